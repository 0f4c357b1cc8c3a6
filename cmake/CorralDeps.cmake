# SPDX-License-Identifier: Apache-2.0
# External libraries, all from Debian packages (scripts/deps.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
pkg_check_modules(CUNIT REQUIRED IMPORTED_TARGET cunit)
if(CORRAL_WITH_BPF)
	pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf)
	find_program(BPF_CLANG NAMES clang-14 clang REQUIRED)
	find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
endif()
find_program(PROTOC_C NAMES protoc-c REQUIRED)
find_package(Threads REQUIRED)
# PostgreSQL backend of corral-server (libpq); the tests also use Debian's postgresql-15 binaries
# for a throwaway cluster. OFF builds a SQLite-only server.
option(CORRAL_WITH_POSTGRES "Build corral-server's PostgreSQL storage backend (libpq)" ON)
if(CORRAL_WITH_POSTGRES)
	pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
endif()
