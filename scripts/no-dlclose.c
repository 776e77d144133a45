/*
 * A dlclose that keeps every library loaded, for leak checks only.
 *
 * lua_close unloads the C modules it loaded (cloudflare.core, and libcurl
 * and OpenSSL with it) before LeakSanitizer or valgrind scans memory at
 * exit. Memory that those libraries still reference from their own data
 * then looks leaked, and the stack frames of real leaks print as
 * "<unknown module>". Preloading this library avoids both.
 */
int dlclose(void *handle);

int dlclose(void *handle) {
  (void)handle;
  return 0;
}
