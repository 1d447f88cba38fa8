/* SPDX-License-Identifier: GPL-2.0 */
/* lsm.h - what krsi's BPF-LSM programs (enforce.bpf.c, protect.bpf.c) share on the BPF side: the return value
 * every hook goes through. The header of the `denied` record they write is filled by hdr.h's fill_hdr(). */
#ifndef KRSI_LSM_H
#define KRSI_LSM_H

#define MAX_ERRNO 4095

/* what a hook returns, provably in [-MAX_ERRNO, 0]: from 6.12 the verifier refuses an LSM program unless it
 * can prove that range at every exit. The value is range-checked and the checked register itself is
 * returned (clang would otherwise test a sign-extended copy and return the unchecked original, or compute
 * `enforce ? -EPERM : 0` as a negation the verifier cannot bound); anything outside the range is a refusal */
static __always_inline int lsm_ret(int ret)
{
	long e = ret;

	asm volatile("" : "+r"(e));
	if (e < -MAX_ERRNO || e > 0)
		return -1;   /* -EPERM */
	return e;
}

/* an earlier BPF-LSM program's refusal, passed on */
static __always_inline int earlier(int ret)
{
	return lsm_ret(ret);
}

#endif
