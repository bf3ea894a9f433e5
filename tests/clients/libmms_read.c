/* A minimal libmms client for the MMS integration tests: connects with mmsx_connect (libmms
 * tries MMS over TCP first), reads up to LIMIT bytes of the ASF stream (header + packets) with
 * mmsx_read and writes them to OUT, so ffprobe can decode what libmms received.
 *
 *   libmms_read URL OUT LIMIT
 *
 * Exit status: 0 when LIMIT bytes were read, 2 on connect failure, 3 on a read error or an
 * early end of stream (what was read so far is still written), 1 on usage or file errors. */
#include <stdio.h>
#include <stdlib.h>
#include <libmms/mmsx.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s URL OUT LIMIT\n", argv[0]);
        return 1;
    }
    long limit = atol(argv[3]);
    FILE *out = fopen(argv[2], "wb");
    if (!out) {
        perror(argv[2]);
        return 1;
    }
    mmsx_t *m = mmsx_connect(NULL, NULL, argv[1], 1000000000);
    if (!m) {
        fprintf(stderr, "mmsx_connect failed\n");
        fclose(out);
        return 2;
    }
    fprintf(stderr, "header %u bytes, packet %llu bytes, seekable %d\n",
            mmsx_get_asf_header_len(m), (unsigned long long)mmsx_get_asf_packet_len(m),
            mmsx_get_seekable(m));
    char buf[16384];
    long total = 0;
    int status = 0;
    while (total < limit) {
        int want = (int)(limit - total < (long)sizeof buf ? limit - total : (long)sizeof buf);
        int n = mmsx_read(NULL, m, buf, want);
        if (n <= 0) {
            fprintf(stderr, "mmsx_read returned %d after %ld bytes\n", n, total);
            status = 3;
            break;
        }
        if (fwrite(buf, 1, (size_t)n, out) != (size_t)n) {
            perror("fwrite");
            status = 1;
            break;
        }
        total += n;
    }
    fprintf(stderr, "read %ld bytes\n", total);
    mmsx_close(m);
    fclose(out);
    return status;
}
