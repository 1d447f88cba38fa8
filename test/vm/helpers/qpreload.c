/* qpreload.so - the injected library of the quarantine cases: it only has to be loaded (LD_PRELOAD) */
__attribute__((constructor)) static void qpreload_init(void) {}
