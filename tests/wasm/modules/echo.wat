;; Well-behaved: its decision is its observation, byte for byte (tests the host's round trip).
(module
  (memory (export "memory") 2)
  (func (export "alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "decide") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len)))))
