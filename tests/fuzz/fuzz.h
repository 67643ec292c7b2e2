/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/* The entry points libFuzzer calls. */
#ifndef VXHS_FUZZ_H
#define VXHS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
