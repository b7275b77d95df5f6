#[test]
fn another_process_s_mem_file_is_tampering_one_s_own_is_not() {
    use super::other_process_memory;
    assert_eq!(other_process_memory("/proc/42/mem", 7), Some(42));
    assert_eq!(other_process_memory("/proc/42/task/43/mem", 7), Some(42));
    assert_eq!(other_process_memory("/proc/7/mem", 7), None);
    assert_eq!(other_process_memory("/proc/7/task/8/mem", 7), None);
    assert_eq!(other_process_memory("/proc/42/maps", 7), None);
    assert_eq!(other_process_memory("/proc/self/mem", 7), None);
    assert_eq!(other_process_memory("/proc/42/x/mem", 7), None);
    assert_eq!(other_process_memory("/tmp/proc/42/mem", 7), None);
}
