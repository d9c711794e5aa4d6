/* bcryptprimitives.dll for Wine 8.0 (Debian 12), used only by .ci/platforms to run the
 * Windows build under Wine; it is never shipped.
 *
 * Why: Rust's standard library (since 1.78) gets its random numbers (HashMap seeds)
 * from ProcessPrng in bcryptprimitives.dll, which every Windows 10+ has but Wine 8.0
 * does not: without this file the .exe fails to start under Wine. Placed beside the
 * .exe, Wine loads it as the program's own DLL. It fills the buffer from
 * RtlGenRandom (advapi32's SystemFunction036, the system's CSPRNG), which Wine has.
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll processprng.c
 *        processprng.def -ladvapi32
 */
#include <windows.h>

/* RtlGenRandom's real export name; its length argument is a ULONG. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Always returns TRUE on Windows; here FALSE if the system generator fails. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
