#include "textflag.h"

// func inb(port uint16) uint8
TEXT ·inb(SB),NOSPLIT,$0-9
	MOVW port+0(FP), DX
	INB
	MOVB AL, ret+8(FP)
	RET

// func outw(port uint16, val uint16)
TEXT ·outw(SB),NOSPLIT,$0-4
	MOVW port+0(FP), DX
	MOVW val+2(FP), AX
	OUTW
	RET
