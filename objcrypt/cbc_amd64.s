//go:build amd64 && !purego

#include "textflag.h"

// func cbcEncryptAES(rounds int, xk *byte, dst, src, iv *byte, blocks int)
//
// CBC encryption is one chain: each block waits for the previous one. The
// round keys stay in registers (AES-128: all eleven; AES-256: all but the
// last, which is reloaded per block) so the loop is only the chain.
TEXT ·cbcEncryptAES(SB), NOSPLIT, $0-48
	MOVQ rounds+0(FP), CX
	MOVQ xk+8(FP), AX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ iv+32(FP), DX
	MOVQ blocks+40(FP), BX
	MOVOU (DX), X0
	MOVOU 0(AX), X2
	MOVOU 16(AX), X3
	MOVOU 32(AX), X4
	MOVOU 48(AX), X5
	MOVOU 64(AX), X6
	MOVOU 80(AX), X7
	MOVOU 96(AX), X8
	MOVOU 112(AX), X9
	MOVOU 128(AX), X10
	MOVOU 144(AX), X11
	MOVOU 160(AX), X12
	CMPQ CX, $10
	JNE enc256

enc128:
	MOVOU (SI), X1
	PXOR X1, X0
	PXOR X2, X0
	AESENC X3, X0
	AESENC X4, X0
	AESENC X5, X0
	AESENC X6, X0
	AESENC X7, X0
	AESENC X8, X0
	AESENC X9, X0
	AESENC X10, X0
	AESENC X11, X0
	AESENCLAST X12, X0
	MOVOU X0, (DI)
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ BX
	JNZ enc128
	RET

enc256:
	MOVOU 176(AX), X13
	MOVOU 192(AX), X14
	MOVOU 208(AX), X15

enc256loop:
	MOVOU (SI), X1
	PXOR X1, X0
	PXOR X2, X0
	AESENC X3, X0
	AESENC X4, X0
	AESENC X5, X0
	AESENC X6, X0
	AESENC X7, X0
	AESENC X8, X0
	AESENC X9, X0
	AESENC X10, X0
	AESENC X11, X0
	AESENC X12, X0
	AESENC X13, X0
	AESENC X14, X0
	AESENC X15, X0
	MOVOU 224(AX), X1
	AESENCLAST X1, X0
	MOVOU X0, (DI)
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ BX
	JNZ enc256loop
	RET

// func cbcDecryptAES(rounds int, xk *byte, dst, src, iv *byte, blocks int)
//
// CBC decryption of block i needs only ciphertext blocks i and i-1, so
// eight blocks go through the AES unit together. All eight results are
// combined with the ciphertext before any is stored, so dst may be src.
TEXT ·cbcDecryptAES(SB), NOSPLIT, $0-48
	MOVQ rounds+0(FP), CX
	MOVQ xk+8(FP), AX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ iv+32(FP), DX
	MOVQ blocks+40(FP), BX
	MOVOU (DX), X8 // the ciphertext block before the current one
	CMPQ BX, $8
	JB tail

loop8:
	MOVOU 0(AX), X9
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVOU 64(SI), X4
	MOVOU 80(SI), X5
	MOVOU 96(SI), X6
	MOVOU 112(SI), X7
	PXOR X9, X0
	PXOR X9, X1
	PXOR X9, X2
	PXOR X9, X3
	PXOR X9, X4
	PXOR X9, X5
	PXOR X9, X6
	PXOR X9, X7
	MOVQ AX, R8
	MOVQ CX, R9
	DECQ R9

rounds8:
	ADDQ $16, R8
	MOVOU (R8), X9
	AESDEC X9, X0
	AESDEC X9, X1
	AESDEC X9, X2
	AESDEC X9, X3
	AESDEC X9, X4
	AESDEC X9, X5
	AESDEC X9, X6
	AESDEC X9, X7
	DECQ R9
	JNZ rounds8
	MOVOU 16(R8), X9
	AESDECLAST X9, X0
	AESDECLAST X9, X1
	AESDECLAST X9, X2
	AESDECLAST X9, X3
	AESDECLAST X9, X4
	AESDECLAST X9, X5
	AESDECLAST X9, X6
	AESDECLAST X9, X7
	PXOR X8, X0
	MOVOU 0(SI), X10
	PXOR X10, X1
	MOVOU 16(SI), X10
	PXOR X10, X2
	MOVOU 32(SI), X10
	PXOR X10, X3
	MOVOU 48(SI), X10
	PXOR X10, X4
	MOVOU 64(SI), X10
	PXOR X10, X5
	MOVOU 80(SI), X10
	PXOR X10, X6
	MOVOU 96(SI), X10
	PXOR X10, X7
	MOVOU 112(SI), X8
	MOVOU X0, 0(DI)
	MOVOU X1, 16(DI)
	MOVOU X2, 32(DI)
	MOVOU X3, 48(DI)
	MOVOU X4, 64(DI)
	MOVOU X5, 80(DI)
	MOVOU X6, 96(DI)
	MOVOU X7, 112(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $8, BX
	CMPQ BX, $8
	JAE loop8

tail:
	TESTQ BX, BX
	JZ done

loop1:
	MOVOU (SI), X0
	MOVOU X0, X10
	MOVOU 0(AX), X9
	PXOR X9, X0
	MOVQ AX, R8
	MOVQ CX, R9
	DECQ R9

rounds1:
	ADDQ $16, R8
	MOVOU (R8), X9
	AESDEC X9, X0
	DECQ R9
	JNZ rounds1
	MOVOU 16(R8), X9
	AESDECLAST X9, X0
	PXOR X8, X0
	MOVOU X10, X8
	MOVOU X0, (DI)
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ BX
	JNZ loop1

done:
	RET

// func cbcDecryptVAES(rounds int, xk *byte, dst, src, iv *byte, blocks int)
//
// cbcDecryptAES with VAES on 512-bit registers: 32 blocks per iteration,
// four to a register. blocks is a positive multiple of 32. The chaining
// block of a register's first block is the previous register's last
// (Z8 lane 3 for the first register: the IV, then the previous
// iteration's last ciphertext block); the others are read from src at
// -16 bytes. Everything is read before anything is stored, so dst may be
// src.
TEXT ·cbcDecryptVAES(SB), NOSPLIT, $0-48
	MOVQ rounds+0(FP), CX
	MOVQ xk+8(FP), AX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ iv+32(FP), DX
	MOVQ blocks+40(FP), BX
	VBROADCASTI32X4 (DX), Z8

loop32:
	VBROADCASTI32X4 0(AX), Z9
	VPXORQ 0(SI), Z9, Z0
	VPXORQ 64(SI), Z9, Z1
	VPXORQ 128(SI), Z9, Z2
	VPXORQ 192(SI), Z9, Z3
	VPXORQ 256(SI), Z9, Z4
	VPXORQ 320(SI), Z9, Z5
	VPXORQ 384(SI), Z9, Z6
	VPXORQ 448(SI), Z9, Z7
	MOVQ AX, R8
	MOVQ CX, R9
	DECQ R9

rounds32:
	ADDQ $16, R8
	VBROADCASTI32X4 (R8), Z9
	VAESDEC Z9, Z0, Z0
	VAESDEC Z9, Z1, Z1
	VAESDEC Z9, Z2, Z2
	VAESDEC Z9, Z3, Z3
	VAESDEC Z9, Z4, Z4
	VAESDEC Z9, Z5, Z5
	VAESDEC Z9, Z6, Z6
	VAESDEC Z9, Z7, Z7
	DECQ R9
	JNZ rounds32
	VBROADCASTI32X4 16(R8), Z9
	VAESDECLAST Z9, Z0, Z0
	VAESDECLAST Z9, Z1, Z1
	VAESDECLAST Z9, Z2, Z2
	VAESDECLAST Z9, Z3, Z3
	VAESDECLAST Z9, Z4, Z4
	VAESDECLAST Z9, Z5, Z5
	VAESDECLAST Z9, Z6, Z6
	VAESDECLAST Z9, Z7, Z7
	VMOVDQU64 0(SI), Z10
	VALIGNQ $6, Z8, Z10, Z10 // the chaining block, then blocks 0-2
	VPXORQ Z10, Z0, Z0
	VPXORQ 48(SI), Z1, Z1
	VPXORQ 112(SI), Z2, Z2
	VPXORQ 176(SI), Z3, Z3
	VPXORQ 240(SI), Z4, Z4
	VPXORQ 304(SI), Z5, Z5
	VPXORQ 368(SI), Z6, Z6
	VPXORQ 432(SI), Z7, Z7
	VMOVDQU64 448(SI), Z8
	VMOVDQU64 Z0, 0(DI)
	VMOVDQU64 Z1, 64(DI)
	VMOVDQU64 Z2, 128(DI)
	VMOVDQU64 Z3, 192(DI)
	VMOVDQU64 Z4, 256(DI)
	VMOVDQU64 Z5, 320(DI)
	VMOVDQU64 Z6, 384(DI)
	VMOVDQU64 Z7, 448(DI)
	ADDQ $512, SI
	ADDQ $512, DI
	SUBQ $32, BX
	JNZ loop32
	VZEROUPPER
	RET
