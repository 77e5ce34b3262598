/* Lazy loading: pages of .data, .bss and code are not in memory before
 * their first touch (under vmrun; natively the kernel may map file pages
 * around a fault, so that count is printed on its own line, "note:"). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define N (1 << 20)
static unsigned char data[N] = { 1, 2, 3 };   /* .data, 1 MiB */
static unsigned char bss[N];                  /* .bss, 1 MiB */
static const unsigned char table[N] = { 9 };  /* .rodata, 1 MiB */
/* .bss sharing the last page of .data must read as zero */
static unsigned char tail_data[100] = { 7 };
static unsigned char tail_bss[100];

static int present(const void *p, size_t len)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	int n = 0;
	for (uintptr_t a = (uintptr_t)p & ~4095ul; a < (uintptr_t)p + len; a += 4096) {
		uint64_t e = 0;
		if (pread(fd, &e, 8, (off_t)(a / 4096 * 8)) == 8 && (e >> 63))
			n++;
	}
	close(fd);
	return n;
}

int main(void)
{
	/* skip the first and last pages: they may share with touched data */
	printf("note: before: data %d bss %d rodata %d\n",
	       present(data + 8192, N - 16384), present(bss + 8192, N - 16384),
	       present(table + 8192, N - 16384));
	unsigned long sum = 0;
	for (int i = 0; i < N; i += 4096)
		sum += data[i] + bss[i] + table[i];
	for (int i = 0; i < 100; i++)
		sum += tail_data[i] * 3u + tail_bss[i];
	printf("sum %lu\n", sum);
	memset(bss, 5, N);
	for (int i = 0; i < N; i += 4096)
		data[i] += bss[i];
	sum = 0;
	for (int i = 0; i < N; i += 512)
		sum += data[i];
	printf("after %lu\n", sum);
	printf("note: after: data %d\n", present(data + 8192, N - 16384));
	return 0;
}
