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

tests/run_tests: tests/main.c tests/api_only.c tests/test.h tests/wsclient.h tests/integration.c \
		tests/unit_bytes.c tests/unit_json.c tests/unit_http.c tests/unit_ws.c chat.h
	$(CC) $(CFLAGS) -o $@ tests/main.c tests/api_only.c $(LDFLAGS)

test: chat tests/run_tests
	./tests/run_tests

clean:
	rm -f chat tests/run_tests

.PHONY: all run embed test clean
