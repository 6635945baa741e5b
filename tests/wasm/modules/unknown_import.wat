;; Hostile: imports a function no capability grants.
(module
  (import "env" "foo" (func $foo))
  (memory (export "memory") 1)
  (func (export "alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "decide") (param $ptr i32) (param $len i32) (result i64)
    (call $foo)
    (i64.const 0)))
