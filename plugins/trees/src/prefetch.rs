//! A software prefetch hint, for loops that walk rows in an order the
//! hardware prefetcher cannot guess (a leaf's rows, ascending with gaps).

/// Asks the CPU to start loading the cache line holding `*r`. A hint only:
/// it reads nothing, changes nothing and cannot fault; a no-op on targets
/// without a prefetch instruction.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` is part of SSE, which every x86_64 CPU has; it
    // never faults, whatever the address, and has no effect on memory. The
    // pointer comes from a live reference anyway.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (r as *const T).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefetch_is_a_no_op_on_values() {
        let v = [1u8, 2, 3];
        super::prefetch(&v[1]);
        assert_eq!(v, [1, 2, 3]);
    }
}
