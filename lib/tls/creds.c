// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#include <errno.h>
#include <stdarg.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tls/tls.h"

int vxhs_tls_fail(char *err, size_t len, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return ret;
}

static int check_key_mode(const char *path, char *err, size_t len)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return vxhs_tls_fail(err, len, -errno, "%s: %s", path,
				     strerror(errno));
	if (!S_ISREG(st.st_mode))
		return vxhs_tls_fail(err, len, -EINVAL,
				     "%s: not a regular file", path);
	/* A key others can read is a key others have. */
	if (st.st_mode & (S_IRWXO | S_IWGRP))
		return vxhs_tls_fail(
			err, len, -EPERM,
			"%s: private key readable or writable by others "
			"(mode %03o); chmod 600 it",
			path, (unsigned int)(st.st_mode & 0777));
	return 0;
}

/* Our own certificate must be usable now, or every handshake fails. */
static int check_own_cert(gnutls_certificate_credentials_t creds,
			  const char *path, char *err, size_t len)
{
	gnutls_x509_crt_t *crts = NULL;
	unsigned int n = 0;
	time_t now = time(NULL), t;
	int ret = 0;

	if (gnutls_certificate_get_x509_crt(creds, 0, &crts, &n) < 0 || !n)
		return vxhs_tls_fail(err, len, -EINVAL, "%s: no certificate",
				     path);
	t = gnutls_x509_crt_get_expiration_time(crts[0]);
	if (t != (time_t)-1 && t < now)
		ret = vxhs_tls_fail(err, len, -EKEYEXPIRED,
				    "%s: our certificate expired on %s", path,
				    strtok(ctime(&t), "\n"));
	t = gnutls_x509_crt_get_activation_time(crts[0]);
	if (!ret && t != (time_t)-1 && t > now)
		ret = vxhs_tls_fail(
			err, len, -EKEYEXPIRED,
			"%s: our certificate is not valid before %s", path,
			strtok(ctime(&t), "\n"));
	for (unsigned int i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	return ret;
}

int vxhs_tls_creds_load(const char *dir, gnutls_certificate_credentials_t *out,
			char *err, size_t errlen)
{
	gnutls_certificate_credentials_t creds;
	char ca[4096], crl[4096], cert[4096], key[4096];
	struct stat st;
	int ret;

	if (snprintf(key, sizeof(key), "%s/%s", dir, VXHS_TLS_KEY) >=
	    (int)sizeof(key))
		return vxhs_tls_fail(err, errlen, -ENAMETOOLONG,
				     "%s: path too long", dir);
	snprintf(ca, sizeof(ca), "%s/%s", dir, VXHS_TLS_CA);
	snprintf(crl, sizeof(crl), "%s/%s", dir, VXHS_TLS_CRL);
	snprintf(cert, sizeof(cert), "%s/%s", dir, VXHS_TLS_CERT);
	if (stat(dir, &st) < 0)
		return vxhs_tls_fail(err, errlen, -errno,
				     "TLS directory %s: %s", dir,
				     strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return vxhs_tls_fail(err, errlen, -ENOTDIR,
				     "TLS directory %s: not a directory", dir);
	ret = check_key_mode(key, err, errlen);
	if (ret)
		return ret;
	if (gnutls_certificate_allocate_credentials(&creds) < 0)
		return vxhs_tls_fail(err, errlen, -ENOMEM, "out of memory");

	ret = gnutls_certificate_set_x509_trust_file(creds, ca,
						     GNUTLS_X509_FMT_PEM);
	if (ret <= 0) {
		ret = vxhs_tls_fail(err, errlen, -EINVAL, "%s: %s", ca,
				    ret == 0 ? "no CA certificate in it" :
					       gnutls_strerror(ret));
		goto free_creds;
	}
	if (access(crl, F_OK) == 0) {
		ret = gnutls_certificate_set_x509_crl_file(creds, crl,
							   GNUTLS_X509_FMT_PEM);
		if (ret < 0) {
			ret = vxhs_tls_fail(err, errlen, -EINVAL, "%s: %s", crl,
					    gnutls_strerror(ret));
			goto free_creds;
		}
	}
	ret = gnutls_certificate_set_x509_key_file(creds, cert, key,
						   GNUTLS_X509_FMT_PEM);
	if (ret < 0) {
		ret = vxhs_tls_fail(err, errlen, -EINVAL, "%s, %s: %s", cert,
				    key, gnutls_strerror(ret));
		goto free_creds;
	}
	ret = check_own_cert(creds, cert, err, errlen);
	if (ret)
		goto free_creds;
	*out = creds;
	return 0;

free_creds:
	gnutls_certificate_free_credentials(creds);
	return ret;
}

void vxhs_tls_describe_failure(gnutls_session_t session, int gnutls_err,
			       char *buf, size_t len)
{
	gnutls_datum_t text = { NULL, 0 };
	unsigned int status;

	if (gnutls_err != GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		snprintf(buf, len, "TLS handshake failed: %s",
			 gnutls_strerror(gnutls_err));
		return;
	}
	status = gnutls_session_get_verify_cert_status(session);
	if (gnutls_certificate_verification_status_print(
		    status, GNUTLS_CRT_X509, &text, 0) < 0) {
		snprintf(buf, len, "peer certificate refused (status %#x)",
			 status);
		return;
	}
	snprintf(buf, len, "peer certificate refused: %s", text.data);
	gnutls_free(text.data);
	/* GnuTLS ends its sentences with a space. */
	for (size_t n = strlen(buf); n && buf[n - 1] == ' '; n--)
		buf[n - 1] = '\0';
}
