;; Hostile: answers with 100,000 bytes (within its memory, above the 64 KiB output cap).
(module
  (memory (export "memory") 2)
  (func (export "alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "decide") (param $ptr i32) (param $len i32) (result i64)
    (i64.const 100000)))
