package proof

import "testing"

func TestDeviceTypeOf(t *testing.T) {
	cases := map[string]string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1": DeviceMobile,
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36":                   DeviceMobile,
		"Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1":          DeviceTablet,
		"Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36":                          DeviceTablet,
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36":                         DeviceDesktop,
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15":                      DeviceDesktop,
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)":                                                                DeviceBot,
		"WhatsApp/2.23.20.0 A facebookexternalhit/1.1 preview":                                                                                    DeviceBot,
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36":                           DeviceBot,
		"curl/8.5.0": DeviceBot,
		"":           DeviceBot,
	}
	for ua, want := range cases {
		if got := DeviceTypeOf(ua); got != want {
			t.Errorf("DeviceTypeOf(%q) = %q, want %q", ua, got, want)
		}
	}
}

func TestReferrerHostOf(t *testing.T) {
	cases := map[string]string{
		"https://l.instagram.com/?u=https%3A%2F%2Fx&e=token":  "l.instagram.com",
		"https://Shop.Example.COM:8443/pages/proof?email=a@b": "shop.example.com",
		"http://127.0.0.1:8090/proof/abc":                     "127.0.0.1",
		"android-app://com.google.android.gm/":                "",
		"javascript:alert(1)":                                 "",
		"not a url":                                           "",
		"":                                                    "",
		"https://user:pass@example.org/x":                     "example.org",
	}
	for in, want := range cases {
		if got := ReferrerHostOf(in); got != want {
			t.Errorf("ReferrerHostOf(%q) = %q, want %q", in, got, want)
		}
	}
}
