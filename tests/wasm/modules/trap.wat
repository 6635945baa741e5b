;; Hostile: divides by zero.
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "decide") (param $ptr i32) (param $len i32) (result i64)
    (drop (i32.div_u (i32.const 1) (i32.sub (local.get $len) (local.get $len))))
    (i64.const 0)))
