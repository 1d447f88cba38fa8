/* qaudit.so - an LD_AUDIT library for the quarantine cases (test/live/quarantine.test.ts): ld.so loads it as an
 * audit interface (la_version) and it does nothing else */
unsigned int la_version(unsigned int v) { return v; }
