// SPDX-License-Identifier: GPL-2.0
/*
 * The one place the upage tracepoints (upage_trace.h) are defined; every
 * other file includes the header only to call them.
 */
#define CREATE_TRACE_POINTS
#include "upage_trace.h"
