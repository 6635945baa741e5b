;; Hostile: answers with text that is not JSON.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "charge please")
  (func (export "alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "decide") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 13))))
