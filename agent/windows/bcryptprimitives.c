/* A stand-in for Windows' bcryptprimitives.dll, which Debian's Wine 8 lacks: Rust's standard
   library (1.78 and later) takes its random bytes from ProcessPrng there. This one asks
   RtlGenRandom (advapi32's SystemFunction036), which Wine has. Built by scripts/windows into
   the test prefix only; never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
