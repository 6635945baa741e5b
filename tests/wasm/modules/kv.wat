;; Uses its kv store. decide: counts its calls under key "n" and answers the count (4 bytes LE).
;; on_online: stores 60,000 bytes under "big"; on_event: tries 10,000 more under "more" (over the
;; 64 KiB cap). Both answer kv_put's return code (4 bytes LE).
(module
  (import "plurigrid" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i32)))
  (import "plurigrid" "kv_put" (func $kv_put (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "n")
  (data (i32.const 8) "big")
  (data (i32.const 16) "more")
  (func (export "alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $answer (param $value i32) (result i64)
    (i32.store (i32.const 32) (local.get $value))
    (i64.or (i64.shl (i64.const 32) (i64.const 32)) (i64.const 4)))
  (func (export "decide") (param $ptr i32) (param $len i32) (result i64)
    (if (i32.eq (call $kv_get (i32.const 0) (i32.const 1) (i32.const 64) (i32.const 4)) (i32.const -1))
      (then (i32.store (i32.const 64) (i32.const 0))))
    (i32.store (i32.const 64) (i32.add (i32.load (i32.const 64)) (i32.const 1)))
    (drop (call $kv_put (i32.const 0) (i32.const 1) (i32.const 64) (i32.const 4)))
    (call $answer (i32.load (i32.const 64))))
  (func (export "on_online") (param $ptr i32) (param $len i32) (result i64)
    (call $answer (call $kv_put (i32.const 8) (i32.const 3) (i32.const 4096) (i32.const 60000))))
  (func (export "on_event") (param $ptr i32) (param $len i32) (result i64)
    (call $answer (call $kv_put (i32.const 16) (i32.const 4) (i32.const 4096) (i32.const 10000)))))
