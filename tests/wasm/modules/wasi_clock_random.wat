;; Reads what WASI offers that could make a module depend on its host: decide answers 40 bytes,
;;   [0,8) clock_time_get(realtime) ns, [8,16) clock_time_get(monotonic) ns, [16,32) random_get,
;;   [32,36) poll_oneoff's errno (a one-second sleep), [36,40) clock_time_get(9)'s errno.
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "decide") (param $ptr i32) (param $len i32) (result i64)
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 0)))
    (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 8)))
    (drop (call $random (i32.const 16) (i32.const 16)))
    ;; one clock subscription at 200: userdata 0, tag 0 (clock), id monotonic, timeout 1 s, relative
    (i32.store8 (i32.const 208) (i32.const 0))
    (i32.store (i32.const 216) (i32.const 1))
    (i64.store (i32.const 224) (i64.const 1000000000))
    (i32.store (i32.const 32) (call $poll (i32.const 200) (i32.const 400) (i32.const 1) (i32.const 500)))
    (i32.store (i32.const 36) (call $clock (i32.const 9) (i64.const 1) (i32.const 600)))
    (i64.const 40)))
