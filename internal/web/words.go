package web

import "regexp"

// Messages of the PKI and the lifecycle name the CLI command that fixes a
// problem ("import it with 'palisade ca import'"). In the web admin the
// same message names the page and the button instead; the rendered page is
// rewritten once, so every message gets it wherever it is shown.
var cliToPage = []struct {
	re   *regexp.Regexp
	page string
}{
	{regexp.MustCompile(`with (?:&#39;|')palisade ca import(?:&#39;|')`), `on Basic Configuration → Certificates with “Import CA certificate”`},
	{regexp.MustCompile(`\((?:&#39;|')palisade ca import(?:&#39;|')\)`), `(Basic Configuration → Certificates → “Import CA certificate”)`},
	{regexp.MustCompile(`with (?:&#39;|')palisade ca crl(?:&#39;|')`), `on Basic Configuration → Certificates with “Import CRL” on the CA's row`},
	{regexp.MustCompile(`(?:with )?(?:&#39;|')palisade cert import[^'&]*(?:&#39;|')`), `with “Import” on the certificate's row of Basic Configuration → Certificates`},
	{regexp.MustCompile(`\((?:with )?“Import” on the certificate's row of Basic Configuration → Certificates\)`), `(“Import” on the certificate's row of Basic Configuration → Certificates)`},
	{regexp.MustCompile(`(?:with )?(?:&#39;|')palisade cert new[^'&]*(?:&#39;|')`), `with “Create” on Basic Configuration → Certificates`},
	{regexp.MustCompile(`(?:with )?(?:&#39;|')palisade cert csr[^'&]*(?:&#39;|')`), `with View/Download → “Download certificate request” on Basic Configuration → Certificates`},
	{regexp.MustCompile(`\(network\.interfaces\[\]\.fqdn\)`), `(the FQDN field of the profile form, or Network → Interfaces)`},
}

// pageWords rewrites CLI references in a rendered page.
func pageWords(page []byte) []byte {
	for _, c := range cliToPage {
		page = c.re.ReplaceAll(page, []byte(c.page))
	}
	return page
}
