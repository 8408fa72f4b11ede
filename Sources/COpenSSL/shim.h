// libcrypto (OpenSSL 3, Debian's libssl-dev): only what swift-crypto lacks — RSA PKCS#1 v1.5 encryption, which the
// DeepStressModel offline package needs (docs/DEEPSTRESSMODEL.md). ServiceKit wraps it; nothing else imports it.
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/err.h>
