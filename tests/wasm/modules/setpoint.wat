;; Commands its battery through `set_setpoint` (capability set_setpoint): first -1500 W, then 2000.5 W (the last
;; command of a call wins), an infinite power it is refused (-1, nothing recorded), and decides battery_kw 1.5,
;; which the command replaces.
(module
  (import "plurigrid" "set_setpoint" (func $set (param f64) (result i32)))
  (memory (export "memory") 1)
  (global $refused (mut i32) (i32.const 0))
  (data (i32.const 1024) "{\"battery_kw\":1.5,\"trade\":true}")
  (func (export "alloc") (param $size i32) (result i32) (i32.const 4096))
  (func (export "decide") (param $ptr i32) (param $len i32) (result i64)
    (drop (call $set (f64.const -1500)))
    (drop (call $set (f64.const 2000.5)))
    (global.set $refused (call $set (f64.div (f64.const 1) (f64.const 0))))
    (if (i32.ne (global.get $refused) (i32.const -1)) (then unreachable))
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 31))))
