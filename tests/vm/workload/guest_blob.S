/* The two guest images, embedded in kvmwalk (the Makefile passes the
 * build directory to the assembler's include path). */
	.section .rodata
	.balign 16
	.global guest64_start, guest64_end, guest32_start, guest32_end
guest64_start:
	.incbin "guest64.bin"
guest64_end:
	.balign 16
guest32_start:
	.incbin "guest32.bin"
guest32_end:

	/* No executable stack for the whole program because of this file. */
	.section .note.GNU-stack, "", @progbits
