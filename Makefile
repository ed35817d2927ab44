# chat.h - build, run and test with nothing but a C compiler, make and sh.
#   make            the example server ./chat (page included)
#   make run        ... and run it on http://localhost:8080 (PORT=... to change)
#   make test       the core suite; the last line says "N passed, M failed"
#   make embed      copy public/ into example_main.c after editing the page
#   make clean

CFLAGS ?= -O2 -g -Wall -Wextra -pedantic -std=c99
PORT ?= 8080

all: chat

chat: example_main.c chat.h
	$(CC) $(CFLAGS) -o $@ example_main.c $(LDFLAGS)

run: chat
	./chat -p $(PORT)

embed:
	sh tests/embed.sh

tests/run_tests: tests/main.c tests/api_only.c tests/test.h tests/wsclient.h tests/harness.h tests/integration.c tests/conformance.c tests/faults.c tests/deploy.c tests/limits.c tests/seams.c tests/door.c tests/continuity.c \
		tests/unit_bytes.c tests/unit_json.c tests/unit_http.c tests/unit_ws.c tests/unit_room.c tests/unit_hfile.c tests/unit_mqtt.c chat.h
	$(CC) $(CFLAGS) -pthread -o $@ tests/main.c tests/api_only.c $(LDFLAGS)

test: chat tests/run_tests include-order tests/embed_example tests/codec_client
	sh tests/platform_door.sh
	sh tests/wire/run.sh ./chat
	./tests/codec_client ./chat
	./tests/run_tests

# A WebSocket client made of the codec tier alone (CHAT_CODECS_ONLY), in C and C++; no server
# function may be in it.
tests/codec_client: tests/codec_client.c chat.h
	$(CC) $(CFLAGS) -Werror -o $@ tests/codec_client.c
	$(CXX) -x c++ -Wall -Wextra -Werror -fsyntax-only tests/codec_client.c
	@if nm $@ | grep -q 'chat_server\|chat__conn\|chat__room'; then \
		echo "FAIL codec tier: CHAT_CODECS_ONLY compiled server code into $@"; exit 1; fi

# README's embedding example, as a program of its own (C and C++, -Werror).
tests/embed_example: tests/embed_example.c chat.h
	$(CC) $(CFLAGS) -Werror -I. -o $@ tests/embed_example.c
	$(CXX) -x c++ -Wall -Wextra -Werror -I. -fsyntax-only tests/embed_example.c

# <stdio.h> before chat.h under -std=c99 (tests/include_order.c): it builds, or it stops at
# chat.h's own #error (which says what to do) and at nothing else; with _POSIX_C_SOURCE first
# it builds clean.
include-order:
	@if $(CC) $(CFLAGS) -o tests/include_order tests/include_order.c 2>tests/include_order.err; then :; \
	elif [ "$$(grep -c 'error:' tests/include_order.err)" = 1 ] && grep -q 'error: .*chat.h: with -std=c99' tests/include_order.err; then :; \
	else echo "FAIL include order: stdio.h before chat.h does not stop at chat.h's #error:"; cat tests/include_order.err; exit 1; fi
	@$(CC) $(CFLAGS) -Werror -D_POSIX_C_SOURCE=200809L -o tests/include_order tests/include_order.c || \
		{ echo "FAIL include order: with _POSIX_C_SOURCE first it does not build"; exit 1; }
	@rm -f tests/include_order tests/include_order.err

clean:
	rm -f chat chat-tls tests/run_tests tests/run_tests-wss tests/bridge/run_bridge tests/include_order tests/include_order.err tests/embed_example tests/codec_client

.PHONY: all run embed test include-order clean

# --- heavier layers (CI runs them too) ---------------------------------------------------------

SAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--show-leak-kinds=definite,indirect --track-fds=no

# The core suite with AddressSanitizer + UBSan in the tests and in the server binary.
test-asan:
	$(CC) $(SAN_FLAGS) -Wall -Wextra -std=c99 -o chat-asan example_main.c
	$(CC) $(SAN_FLAGS) -Wall -Wextra -std=c99 -pthread -o tests/run_tests-asan tests/main.c tests/api_only.c
	CHAT_TEST_BIN=./chat-asan ASAN_OPTIONS=detect_leaks=1 ./tests/run_tests-asan

# The core suite under ThreadSanitizer: chat_server_post and chat_server_stop from a second thread.
test-tsan:
	$(CC) -O1 -g -fsanitize=thread -Wall -Wextra -std=c99 -o chat-tsan example_main.c
	$(CC) -O1 -g -fsanitize=thread -Wall -Wextra -std=c99 -pthread -o tests/run_tests-tsan tests/main.c tests/api_only.c
	CHAT_TEST_BIN=./chat-tsan TSAN_OPTIONS=halt_on_error=1 ./tests/run_tests-tsan

# The core suite under valgrind: the test runner (and the servers it forks) and the binary.
test-valgrind: chat tests/run_tests
	CHAT_TEST_SLOW=4 CHAT_TEST_CHURN=2000 CHAT_TEST_WRAPPER="$(VALGRIND)" $(VALGRIND) ./tests/run_tests

# The history file on FAT (no hard links): a bad file is still set aside. Needs root, /dev/fuse,
# fusefat and dosfstools; .ci/run runs it as root.
test-fat: chat
	sh tests/hfile_fat.sh ./chat

# The wire-contract tests against the tutorial on Deno and Node + ws (needs node and npm).
compat: tests/run_tests
	bash tests/compat.sh

# TLS (issue 16): a chat over wss:// through nginx terminating TLS; then TLS in chat.h itself,
# the mbedTLS adapter: ./chat-tls --cert --key against openssl s_client, Python's websockets and
# bad certificates (tests/tls/direct.sh), the conformance cases over wss and TLS's own tests
# (tests/run_tests-wss, built with the small board's 4 KiB reads so that input waits in mbedTLS),
# and both again under ASan + UBSan and valgrind. Needs nginx, openssl, python3-websockets,
# libmbedtls-dev.
TLS_LIBS = -lmbedtls -lmbedx509 -lmbedcrypto
chat-tls: example_main.c chat.h
	$(CC) $(CFLAGS) -DCHAT_TLS_MBEDTLS -o $@ example_main.c $(LDFLAGS) $(TLS_LIBS)

tests/run_tests-wss: tests/run_tests tests/tls/wss.c
	$(CC) $(CFLAGS) -DCHAT_TLS_MBEDTLS -DCHAT_READ_CHUNK=4096 -pthread -o $@ tests/main.c tests/api_only.c $(LDFLAGS) $(TLS_LIBS)

tls: chat chat-tls tests/run_tests-wss
	bash tests/tls/run.sh
	bash tests/tls/direct.sh

# The core suite on armhf (poll() path), aarch64, mips (big-endian) and riscv64 under qemu-user, and a static
# musl build (needs qemu-user, gcc-{arm-linux-gnueabihf,aarch64-linux-gnu,mips-linux-gnu,
# riscv64-linux-gnu}, musl-tools).
cross:
	bash tests/cross.sh

# chat.h beside Node + ws and the Deno tutorial (tests/bench/README.md); about 2 minutes.
bench:
	bash tests/bench/run.sh

bench-smoke:
	bash tests/bench/run.sh --smoke

# The small-board configuration of README.md, built into the example and the suite, which must
# pass with it (limits refused gracefully: 503 when full, 1009 when too big).
SMALL_BOARD = -DCHAT_MAX_CLIENTS=32 -DCHAT_MAX_MESSAGE=4096 -DCHAT_MAX_BACKLOG=65536 \
	-DCHAT_MAX_HEADER=2048 -DCHAT_HISTORY=10 -DCHAT_READ_CHUNK=4096 -DCHAT_SNDBUF=16384 -DCHAT_RCVBUF=16384
test-small:
	$(CC) $(CFLAGS) $(SMALL_BOARD) -o chat-small example_main.c
	$(CC) $(CFLAGS) $(SMALL_BOARD) -pthread -o tests/run_tests-small tests/main.c tests/api_only.c
	CHAT_TEST_BIN=./chat-small ./tests/run_tests-small

# Issue 10, bounded memory and fair service: every attack at once (pipelining, ping floods, slow
# readers, keep-alive trickle, join churn, cheap-frame floods, hoarding; from many 127.0.0.x source
# addresses) against ./chat and the small-board build, while a probe acts as a real user; checks
# the server's peak RSS and the kernel memory of its sockets (tests/attack/run.sh; about 35 s).
# The talker's message size follows the build's CHAT_MAX_MESSAGE.
test-memory: chat
	$(CC) $(CFLAGS) $(SMALL_BOARD) -o chat-small example_main.c
	SMALL_MAX_MESSAGE=$(patsubst -DCHAT_MAX_MESSAGE=%,%,$(filter -DCHAT_MAX_MESSAGE=%,$(SMALL_BOARD))) \
		bash tests/attack/run.sh

# The plain POSIX paths that other systems take: accept() + fcntl(), no MSG_NOSIGNAL (SIGPIPE
# ignored instead), strict -std=c99 -D_POSIX_C_SOURCE=200809L; and a compile check of the macOS
# path (SO_NOSIGPIPE).
POSIX_ONLY = -std=c99 -D_POSIX_C_SOURCE=200809L -DCHAT_NO_ACCEPT4 -DCHAT_NO_MSG_NOSIGNAL -DCHAT_NO_EPOLL
test-posix:
	$(CC) -O2 -g -Wall -Wextra -pedantic -Werror $(POSIX_ONLY) -DSO_NOSIGPIPE=0x1022 -o chat-posix example_main.c
	$(CC) -O2 -g -Wall -Wextra -pedantic -Werror $(POSIX_ONLY) -o chat-posix example_main.c
	$(CC) -O2 -g -Wall -Wextra -pedantic -Werror $(POSIX_ONLY) -pthread -o tests/run_tests-posix tests/main.c tests/api_only.c
	CHAT_TEST_BIN=./chat-posix ./tests/run_tests-posix

# The page in Debian's headless Chromium against ./chat (Node.js 20+; installs chromium and
# playwright-core when missing). Last line "N passed, M failed".
e2e: chat
	sh tests/e2e/setup.sh
	cd tests/e2e && CHAT_BIN=../../chat node run.mjs

# Screenshots of a conversation: desktop, phone and dark scheme (adds CJK/emoji fonts). They go to
# a scratch folder, printed at the end (SCREENSHOT_DIR=... to choose it); `make screenshot UPDATE=1`
# rewrites the committed tests/e2e/screenshot-desktop.png, -phone.png and -dark.png instead.
screenshot: chat
	sh tests/e2e/setup.sh --fonts
	cd tests/e2e && CHAT_BIN=../../chat SCREENSHOT_UPDATE=$(UPDATE) node screenshot.mjs

# Stripped sizes per target (Markdown table) and the memory footprint with idle clients.
size:
	bash tests/size.sh

footprint:
	bash tests/footprint.sh

.PHONY: test-asan test-tsan test-valgrind test-fat compat tls cross bench bench-smoke test-small test-memory test-posix size footprint e2e screenshot

# One room across boards (issue 15): boards of ./chat bridged through a real mosquitto that the
# test starts itself on a free loopback port (Debian: apt-get install mosquitto). About a minute.
tests/bridge/run_bridge: tests/bridge/bridge.c tests/harness.h tests/wsclient.h tests/test.h chat.h
	$(CC) $(CFLAGS) -o $@ tests/bridge/bridge.c $(LDFLAGS)

bridge: chat tests/bridge/run_bridge
	./tests/bridge/run_bridge

.PHONY: bridge

# libFuzzer targets under ASan + UBSan (clang; Debian: libclang-rt-14-dev). Each runs for
# FUZZ_SECONDS from its seed corpus in tests/fuzz/corpus/; new inputs go to a scratch directory.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_FLAGS = -g -O1 -Wall -Wextra -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZERS = http ws json conn history mqtt

fuzz:
	@set -e; for f in $(FUZZERS); do \
		$(FUZZ_CC) $(FUZZ_FLAGS) -o tests/fuzz/fuzz_$$f tests/fuzz/fuzz_$$f.c; \
		work=$$(mktemp -d); \
		echo "== fuzz_$$f for $(FUZZ_SECONDS) s"; \
		status=0; \
		./tests/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -detect_leaks=1 \
			-artifact_prefix=tests/fuzz/crash-$$f- "$$work" tests/fuzz/corpus/$$f >"$$work.log" 2>&1 || status=$$?; \
		grep -E '^stat::(number_of_executed_units|peak_rss_mb)|ERROR|SUMMARY|Test unit written' "$$work.log" || true; \
		rm -rf "$$work" "$$work.log"; \
		if [ $$status != 0 ]; then echo "fuzz_$$f failed (status $$status): see tests/fuzz/crash-$$f-*"; exit 1; fi; \
	done

.PHONY: fuzz
