/* SPDX-License-Identifier: MIT */
/* Shared by the shim's C and assembly. */
#ifndef GMVM_SHIM_H
#define GMVM_SHIM_H

/* The start-up test call (entry.S): where does `syscall` land? */
#define SHIM_PROBE 0x7fff0001

#endif /* GMVM_SHIM_H */
