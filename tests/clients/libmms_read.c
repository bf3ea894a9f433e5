/* A libmms client for tests/mms_clients.rs and tests/mmsh_clients.rs: reads a station over
 * MMS (mms://) or MMS over HTTP (mmsh://) and writes what libmms hands out (the ASF header,
 * then re-padded data packets) to a file that ffprobe can decode.
 *
 *   libmms_read URL OUT.asf MAX_BYTES [BANDWIDTH]
 *
 * BANDWIDTH (bits/s, default 1000000) is mmsx_connect's bandwidth argument: libmms picks the
 * best audio and video stream that fit it and turns the others off (MBR renditions).
 *
 * mmsx_connect tries MMS over TCP first and then MMS over HTTP; with an mmsh:// URL it goes
 * straight to HTTP. The TCP connect is replaced (mms_io_t.connect) by one that takes a numeric
 * address without name resolution: libmms resolves with AI_ADDRCONFIG, which finds nothing in
 * the tests' private network namespace (only lo is up there). Prints "header=<n> packet=<n> bytes=<n> seekable=<0|1>" and exits 0 when
 * at least the header and one packet were read.
 *
 * Build: gcc libmms_read.c -o libmms_read -lmms
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmms/mmsx.h>

/* mms_io_t.connect: a numeric IPv4 address, no resolver. Returns the socket or -1. */
static int numeric_connect(void *data, const char *host, int port)
{
    (void)data;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "not a numeric IPv4 address: %s\n", host);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s URL OUT MAX_BYTES [BANDWIDTH]\n", argv[0]);
        return 2;
    }
    int bandwidth = argc == 5 ? (int)strtol(argv[4], NULL, 10) : 1000000;
    long max = strtol(argv[3], NULL, 10);
    if (max <= 0) {
        fprintf(stderr, "bad MAX_BYTES\n");
        return 2;
    }
    mms_io_t io = *mms_get_default_io_impl();
    io.connect = numeric_connect;
    io.connect_data = NULL;
    mmsx_t *m = mmsx_connect(&io, NULL, argv[1], bandwidth);
    if (!m) {
        fprintf(stderr, "mmsx_connect failed\n");
        return 1;
    }
    FILE *out = fopen(argv[2], "wb");
    if (!out) {
        perror("fopen");
        mmsx_close(m);
        return 1;
    }
    uint32_t header = mmsx_get_asf_header_len(m);
    uint64_t packet = mmsx_get_asf_packet_len(m);
    long total = 0;
    char buf[16384];
    while (total < max) {
        int want = (int)(max - total < (long)sizeof buf ? max - total : (long)sizeof buf);
        int n = mmsx_read(&io, m, buf, want);
        if (n <= 0)
            break;
        if (fwrite(buf, 1, (size_t)n, out) != (size_t)n) {
            perror("fwrite");
            break;
        }
        total += n;
    }
    fclose(out);
    printf("header=%u packet=%llu bytes=%ld seekable=%d\n", header,
           (unsigned long long)packet, total, mmsx_get_seekable(m));
    mmsx_close(m);
    return (header > 0 && packet > 0 && total > (long)header) ? 0 : 1;
}
