;; Hostile: claims its decision lies far beyond its one page of memory.
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "decide") (param $ptr i32) (param $len i32) (result i64)
    (i64.const 0xFFFF000000000010)))
