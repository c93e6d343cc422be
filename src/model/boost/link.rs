//! The logistic link σ(m) = 1 / (1 + e^−m), computed with `+ − × ÷` and `floor` only, so that a
//! database computes the same bits (see `export::boosted`).
//!
//! `f64::exp` calls the platform's libm; PostgreSQL and DuckDB call glibc's too, but Spark calls
//! Java's `StrictMath.exp` (fdlibm), which differs from glibc in the last bit for some inputs. The
//! exponential here is the classic argument reduction and rational approximation (Cody and
//! Waite's reduction `x = k·ln2 + r` with ln2 split in two parts, a degree-5 minimax polynomial
//! on `[−ln2/2, ln2/2]`, as in fdlibm and musl), written out step by step: every step is one IEEE
//! operation, correctly rounded in every engine, so the exported query can repeat them. It is
//! within one unit in the last place of `f64::exp` (a unit test checks it).

/// |argument| bound of the link: σ(±40) is 1 − 4·10⁻¹⁸ (1.0 in f64) and 4·10⁻¹⁸, so clamping
/// changes no probability that calibration can tell apart, and keeps `2^k` a normal number.
pub const CLAMP: f64 = 40.0;
/// ln 2, its high part: its last 32 bits are zero, so `k · LN2_HI` is exact for |k| < 2^20.
pub const LN2_HI: f64 = 0.693_147_180_369_123_8;
/// ln 2 − `LN2_HI`.
pub const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// 1 / ln 2.
pub const INV_LN2: f64 = std::f64::consts::LOG2_E;
/// The polynomial's coefficients, lowest degree first.
pub const P: [f64; 5] = [
    0.166_666_666_666_666_02,
    -0.002_777_777_777_701_559_3,
    6.613_756_321_437_934e-5,
    -1.653_390_220_546_525_2e-6,
    4.138_136_797_057_238_5e-8,
];

/// e^x for |x| ≤ [`CLAMP`] (larger arguments are clamped), in the step order the exported SQL
/// repeats.
#[inline]
pub fn exp(x: f64) -> f64 {
    let x = x.clamp(-CLAMP, CLAMP);
    let k = (x * INV_LN2 + 0.5).floor();
    let hi = x - k * LN2_HI;
    let lo = k * LN2_LO;
    let r = hi - lo;
    let t = r * r;
    let c = r - t * (P[0] + t * (P[1] + t * (P[2] + t * (P[3] + t * P[4]))));
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    // 2^k, exact: |k| ≤ 58
    y * f64::from_bits(((1023 + k as i64) as u64) << 52)
}

/// Logistic function σ(m) = 1 / (1 + e^−m).
#[inline]
pub fn sigmoid(m: f64) -> f64 {
    1.0 / (1.0 + exp(0.0 - m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn exp_is_within_one_ulp_of_libm() {
        let mut worst = 0;
        let mut differ = 0;
        let n = 2_000_000;
        for i in 0..=n {
            let x = -CLAMP + 2.0 * CLAMP * i as f64 / n as f64;
            let d = ulps(exp(x), x.exp());
            worst = worst.max(d);
            differ += usize::from(d > 0);
        }
        assert!(worst <= 1, "{worst} ulps");
        // glibc's is correctly rounded; this one is off by one ulp for about one argument in ten
        assert!(differ < n / 5, "{differ} of {n} differ");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(1e300), exp(CLAMP));
    }

    #[test]
    fn sigmoid_is_the_logistic_function() {
        assert_eq!(sigmoid(0.0), 0.5);
        for m in [-50.0f64, -13.8, -1.0, -1e-9, 1e-9, 0.3, 2.0, 13.8, 50.0] {
            let want = 1.0 / (1.0 + (-m).exp());
            // beyond ±CLAMP, σ(±CLAMP): 4.2e-18 from the true value at most
            assert!((sigmoid(m) - want).abs() <= 1e-15 * want + 4.3e-18, "{m}");
        }
        assert!(sigmoid(1.0) > sigmoid(0.999_999));
    }
}
