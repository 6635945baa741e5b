;; A well-behaved module: decides to charge the battery at 1.5 kW and trade, whatever it observes.
(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "{\"battery_kw\":1.5,\"trade\":true}")
  (func (export "alloc") (param $size i32) (result i32) (i32.const 4096))
  (func (export "decide") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 31))))
