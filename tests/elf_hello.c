/* SPDX-License-Identifier: MIT */
/* A tiny program for the loader tests, built static and static-pie: they
 * parse it and compare its pages with what the kernel maps when it runs.
 * It has initialised data and a .bss. */
int hello_data[256] = { 1, 2, 3, 4 };
char hello_bss[20000];

int main(int argc, char **argv)
{
	(void)argv;
	hello_bss[argc] = (char)hello_data[argc & 3];
	return hello_bss[1] == 7;
}
