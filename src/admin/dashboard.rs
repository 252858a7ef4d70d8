//! The live dashboard at `/`: one static page built into the binary. It holds no gateway data
//! itself (it polls `api/state` from the browser), so it is served without the token; the
//! page asks for the token when `api/state` answers 401.

/// The page: inline CSS and vanilla JS, no external resource, so it works offline.
pub const PAGE: &str = include_str!("dashboard.html");

/// `Content-Security-Policy` of the page: its own inline script and style, fetches to this
/// origin only, no frames, no forms posting elsewhere, no other resource.
pub const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_self_contained_and_inserts_data_as_text() {
        assert!(PAGE.starts_with("<!doctype html>"));
        // Nothing fetched from elsewhere: no URL scheme but the inline data: icon and the
        // SVG namespace name.
        for (i, _) in PAGE.match_indices("http") {
            let rest = &PAGE[i..];
            assert!(
                rest.starts_with("http://www.w3.org/2000/svg"),
                "external reference: {}",
                &rest[..rest.len().min(60)]
            );
        }
        assert!(!PAGE.contains("//cdn"));
        // Data goes in through text nodes and attributes only.
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!PAGE.contains(sink), "the page uses {sink}");
        }
        assert!(PAGE.contains("fetch(\"api/state\""));
    }
}
