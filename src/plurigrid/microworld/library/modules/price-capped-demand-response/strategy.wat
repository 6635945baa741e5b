;; Price-capped demand response (Plurigrid ABI 1, docs/modules.md): while the current import price
;; exceeds the cap, the flexible share of the load waits (shift_kw = flexible_frac * load_kw); at or
;; below the cap, or when the oldest waiting energy is due (backlog_age_steps >= max_delay_steps - 1),
;; the whole backlog is served (serve_kw = backlog_kwh / dt_h). Imports nothing; battery, EV and
;; trading are left to the host (missing keys: as `passive`).
;;
;; Memory: keys at 256 (32-byte slots), output text at 1024, the decision at 2048 (2 KiB), the
;; observation from 4096 on (alloc grows memory to fit it).
(module
  (memory (export "memory") 1)
  (global $in (mut i32) (i32.const 4096))
  (global $in_len (mut i32) (i32.const 0))
  (global $out_len (mut i32) (i32.const 0))
  ;; import price above which flexible load waits, EUR/kWh
  (global $cap_eur_per_kwh f64 (f64.const 0.30))

  (data (i32.const 256) "dt_h")                 ;; 4
  (data (i32.const 288) "load_kw")              ;; 7
  (data (i32.const 320) "flexible_frac")        ;; 13
  (data (i32.const 352) "max_delay_steps")      ;; 15
  (data (i32.const 384) "backlog_kwh")          ;; 11
  (data (i32.const 416) "backlog_age_steps")    ;; 17
  (data (i32.const 448) "import_eur_per_kwh")   ;; 18
  (data (i32.const 1024) "{\"shift_kw\":")      ;; 12
  (data (i32.const 1056) ",\"serve_kw\":")      ;; 12
  (data (i32.const 1088) "}")                   ;; 1

  ;; Input memory for the host: the observation goes at 4096, memory grows to hold `size` bytes.
  (func (export "alloc") (param $size i32) (result i32)
    (local $pages i32)
    (local.set $pages (i32.shr_u (i32.add (i32.add (local.get $size) (i32.const 4096)) (i32.const 65535))
                                 (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then (if (i32.lt_s (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const 0))
              (then unreachable))))
    (i32.const 4096))

  ;; Byte `i` of the observation, or -1 past its end.
  (func $at (param $i i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $i) (global.get $in_len))
      (then (i32.load8_u (i32.add (global.get $in) (local.get $i))))
      (else (i32.const -1))))

  (func $skip_blanks (param $i i32) (result i32)
    (local $c i32)
    (block $done
      (loop $next
        (local.set $c (call $at (local.get $i)))
        (br_if $done (i32.eqz (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 9)))
                                      (i32.or (i32.eq (local.get $c) (i32.const 10)) (i32.eq (local.get $c) (i32.const 13))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $i))

  ;; Whether observation bytes [start, start+len) equal the key at `key` (`key_len` bytes).
  (func $same (param $start i32) (param $len i32) (param $key i32) (param $key_len i32) (result i32)
    (local $k i32)
    (if (i32.ne (local.get $len) (local.get $key_len)) (then (return (i32.const 0))))
    (block $differ
      (loop $next
        (if (i32.eq (local.get $k) (local.get $len)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (call $at (i32.add (local.get $start) (local.get $k)))
                               (i32.load8_u (i32.add (local.get $key) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; Offset just after `"key":` among the observation's top-level keys, or -1.
  (func $find (param $key i32) (param $key_len i32) (result i32)
    (local $i i32) (local $c i32) (local $depth i32) (local $start i32) (local $colon i32)
    (block $missing
      (loop $scan
        (local.set $c (call $at (local.get $i)))
        (br_if $missing (i32.lt_s (local.get $c) (i32.const 0)))
        (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91)))
          (then (local.set $depth (i32.add (local.get $depth) (i32.const 1)))))
        (if (i32.or (i32.eq (local.get $c) (i32.const 125)) (i32.eq (local.get $c) (i32.const 93)))
          (then (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))))
        (if (i32.eq (local.get $c) (i32.const 34))
          (then
            (local.set $start (i32.add (local.get $i) (i32.const 1)))
            (local.set $i (local.get $start))
            (block $closed
              (loop $in_string
                (local.set $c (call $at (local.get $i)))
                (br_if $missing (i32.lt_s (local.get $c) (i32.const 0)))
                (br_if $closed (i32.eq (local.get $c) (i32.const 34)))
                (local.set $i (i32.add (local.get $i)
                                       (select (i32.const 2) (i32.const 1) (i32.eq (local.get $c) (i32.const 92)))))
                (br $in_string)))
            (if (i32.and (i32.eq (local.get $depth) (i32.const 1))
                         (call $same (local.get $start) (i32.sub (local.get $i) (local.get $start))
                                     (local.get $key) (local.get $key_len)))
              (then
                (local.set $colon (call $skip_blanks (i32.add (local.get $i) (i32.const 1))))
                (if (i32.eq (call $at (local.get $colon)) (i32.const 58))
                  (then (return (i32.add (local.get $colon) (i32.const 1)))))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (i32.const -1))

  ;; The JSON number at offset `i` (blanks first), or NaN if none is there.
  (func $number (param $i i32) (result f64)
    (local $c i32) (local $negative i32) (local $mantissa f64) (local $exponent i32) (local $digits i32)
    (local $e i32) (local $e_negative i32) (local $k i32) (local $scale f64) (local $value f64)
    (local.set $i (call $skip_blanks (local.get $i)))
    (if (i32.eq (call $at (local.get $i)) (i32.const 45))
      (then (local.set $negative (i32.const 1)) (local.set $i (i32.add (local.get $i) (i32.const 1)))))
    (block $whole_done
      (loop $whole
        (local.set $c (i32.sub (call $at (local.get $i)) (i32.const 48)))
        (br_if $whole_done (i32.ge_u (local.get $c) (i32.const 10)))
        (local.set $mantissa (f64.add (f64.mul (local.get $mantissa) (f64.const 10)) (f64.convert_i32_u (local.get $c))))
        (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $whole)))
    (if (i32.eq (call $at (local.get $i)) (i32.const 46))
      (then
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (block $fraction_done
          (loop $fraction
            (local.set $c (i32.sub (call $at (local.get $i)) (i32.const 48)))
            (br_if $fraction_done (i32.ge_u (local.get $c) (i32.const 10)))
            (local.set $mantissa (f64.add (f64.mul (local.get $mantissa) (f64.const 10)) (f64.convert_i32_u (local.get $c))))
            (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
            (local.set $exponent (i32.sub (local.get $exponent) (i32.const 1)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $fraction)))))
    (if (i32.eqz (local.get $digits)) (then (return (f64.const nan))))
    (if (i32.eq (i32.or (call $at (local.get $i)) (i32.const 32)) (i32.const 101))
      (then
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (local.set $c (call $at (local.get $i)))
        (if (i32.or (i32.eq (local.get $c) (i32.const 43)) (i32.eq (local.get $c) (i32.const 45)))
          (then (local.set $e_negative (i32.eq (local.get $c) (i32.const 45)))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))))
        (block $e_done
          (loop $e_digit
            (local.set $c (i32.sub (call $at (local.get $i)) (i32.const 48)))
            (br_if $e_done (i32.ge_u (local.get $c) (i32.const 10)))
            (if (i32.lt_s (local.get $e) (i32.const 400))
              (then (local.set $e (i32.add (i32.mul (local.get $e) (i32.const 10)) (local.get $c)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $e_digit)))
        (local.set $exponent (i32.add (local.get $exponent)
                                      (select (i32.sub (i32.const 0) (local.get $e)) (local.get $e) (local.get $e_negative))))))
    (local.set $k (select (i32.sub (i32.const 0) (local.get $exponent)) (local.get $exponent)
                          (i32.lt_s (local.get $exponent) (i32.const 0))))
    (local.set $scale (f64.const 1))
    (block $scaled
      (loop $times_ten
        (br_if $scaled (i32.eqz (local.get $k)))
        (local.set $scale (f64.mul (local.get $scale) (f64.const 10)))
        (local.set $k (i32.sub (local.get $k) (i32.const 1)))
        (br $times_ten)))
    (local.set $value (select (f64.div (local.get $mantissa) (local.get $scale)) (f64.mul (local.get $mantissa) (local.get $scale))
                              (i32.lt_s (local.get $exponent) (i32.const 0))))
    (select (f64.neg (local.get $value)) (local.get $value) (local.get $negative)))

  ;; The observation's top-level number `key`, or `fallback` when absent or not a number.
  (func $get (param $key i32) (param $key_len i32) (param $fallback f64) (result f64)
    (local $at i32) (local $value f64)
    (local.set $at (call $find (local.get $key) (local.get $key_len)))
    (if (i32.lt_s (local.get $at) (i32.const 0)) (then (return (local.get $fallback))))
    (local.set $value (call $number (local.get $at)))
    (select (local.get $fallback) (local.get $value) (f64.ne (local.get $value) (local.get $value))))

  (func $put_byte (param $c i32)
    (if (i32.lt_u (global.get $out_len) (i32.const 2048))
      (then (i32.store8 (i32.add (i32.const 2048) (global.get $out_len)) (local.get $c))
            (global.set $out_len (i32.add (global.get $out_len) (i32.const 1))))))

  (func $put_text (param $ptr i32) (param $len i32)
    (local $k i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $k) (local.get $len)))
        (call $put_byte (i32.load8_u (i32.add (local.get $ptr) (local.get $k))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $next))))

  ;; `x` as a decimal with 9 decimals; NaN becomes 0 (JSON has no NaN), magnitudes are capped at 9e9.
  (func $put_number (param $x f64)
    (local $scaled i64) (local $whole i64) (local $part i64) (local $divisor i64) (local $n i32)
    (if (f64.ne (local.get $x) (local.get $x)) (then (local.set $x (f64.const 0))))
    (if (f64.lt (local.get $x) (f64.const 0))
      (then (call $put_byte (i32.const 45)) (local.set $x (f64.neg (local.get $x)))))
    (local.set $scaled (i64.trunc_f64_u (f64.nearest (f64.mul (f64.min (local.get $x) (f64.const 9e9)) (f64.const 1e9)))))
    (local.set $whole (i64.div_u (local.get $scaled) (i64.const 1000000000)))
    (local.set $part (i64.rem_u (local.get $scaled) (i64.const 1000000000)))
    (loop $digit  ;; whole part, least significant digit first, into 224..255
      (i32.store8 (i32.add (i32.const 224) (local.get $n))
                  (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $whole) (i64.const 10)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $whole (i64.div_u (local.get $whole) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $whole) (i64.const 0))))
    (loop $copy
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (call $put_byte (i32.load8_u (i32.add (i32.const 224) (local.get $n))))
      (br_if $copy (local.get $n)))
    (call $put_byte (i32.const 46))
    (local.set $divisor (i64.const 100000000))
    (loop $decimal
      (call $put_byte (i32.add (i32.const 48)
                               (i32.wrap_i64 (i64.rem_u (i64.div_u (local.get $part) (local.get $divisor)) (i64.const 10)))))
      (local.set $divisor (i64.div_u (local.get $divisor) (i64.const 10)))
      (br_if $decimal (i64.ne (local.get $divisor) (i64.const 0)))))

  (func (export "decide") (param $ptr i32) (param $len i32) (result i64)
    (local $dear i32) (local $due i32) (local $dt_h f64) (local $shift f64) (local $serve f64)
    (global.set $in (local.get $ptr))
    (global.set $in_len (local.get $len))
    (global.set $out_len (i32.const 0))
    (local.set $dear (f64.gt (call $get (i32.const 448) (i32.const 18) (f64.const 0)) (global.get $cap_eur_per_kwh)))
    (local.set $due (f64.ge (call $get (i32.const 416) (i32.const 17) (f64.const 0))
                            (f64.sub (call $get (i32.const 352) (i32.const 15) (f64.const 1)) (f64.const 1))))
    (local.set $dt_h (call $get (i32.const 256) (i32.const 4) (f64.const 0.25)))
    (if (local.get $dear)
      (then (local.set $shift (f64.mul (call $get (i32.const 320) (i32.const 13) (f64.const 0))
                                       (call $get (i32.const 288) (i32.const 7) (f64.const 0))))))
    (if (i32.and (i32.or (i32.eqz (local.get $dear)) (local.get $due)) (f64.gt (local.get $dt_h) (f64.const 0)))
      (then (local.set $serve (f64.div (call $get (i32.const 384) (i32.const 11) (f64.const 0)) (local.get $dt_h)))))
    (call $put_text (i32.const 1024) (i32.const 12))
    (call $put_number (local.get $shift))
    (call $put_text (i32.const 1056) (i32.const 12))
    (call $put_number (local.get $serve))
    (call $put_text (i32.const 1088) (i32.const 1))
    (i64.or (i64.shl (i64.const 2048) (i64.const 32)) (i64.extend_i32_u (global.get $out_len))))
)
