#!/bin/sh
# chat.h's promise: every OS call is in its platform section. Lists any call of a system
# function outside it (comments and strings aside) and fails if there is one.
set -eu
hdr=${1:-chat.h}
calls='recv|recvfrom|recvmsg|send|sendto|sendmsg|read|write|readv|writev|shutdown|close|getpeername|getsockname|pipe|pipe2|poll|ppoll|select|epoll_[a-z]+|accept|accept4|socket|bind|listen|connect|getaddrinfo|freeaddrinfo|setsockopt|getsockopt|fcntl|ioctl|clock_gettime|gettimeofday|time|sigaction|signal|kill|open|fsync|fdatasync'
found=$(awk '
    /^\/\* platform: the only place with OS calls/ { inside = 1 }
    inside && /^\/\* [a-z].*: .*\*\/$/ && !/platform/ { inside = 0 }
    {   # drop comments, also those over several lines
        line = $0; code = ""
        while (line != "") {
            if (in_comment) {
                i = index(line, "*/")
                if (i == 0) line = ""; else { line = substr(line, i + 2); in_comment = 0 }
            } else {
                i = index(line, "/*")
                if (i == 0) { code = code line; line = "" }
                else { code = code substr(line, 1, i - 1); line = substr(line, i + 2); in_comment = 1 }
            }
        }
        if (!inside) print FILENAME ":" FNR ": " code
    }' "$hdr" |
    sed -e 's#"[^"]*"##g' |
    grep -E "(^|[^a-zA-Z0-9_.>])($calls)\(" || true)
if [ -n "$found" ]; then
    echo "FAIL platform door: OS calls outside chat.h's platform section:"
    echo "$found"
    exit 1
fi
echo "platform door: every OS call of $hdr is in its platform section"
