;; Not ABI 1: no alloc, and decide has the wrong type.
(module
  (memory (export "memory") 1)
  (func (export "decide") (param $ptr i32) (result i32) (i32.const 0)))
