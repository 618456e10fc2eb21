//! One backend's column in a report: its label, whether it is the trusted
//! reference, and what it says about itself.

use std::time::Duration;

use syncspec_reports::report::Backend;

/// How long `GET /version` may take before the backend is taken to say nothing.
const ABOUT_PATIENCE: Duration = Duration::from_secs(3);

/// The name a target goes by in a report: its host and port (or the whole URL when it has a path).
pub(crate) fn name_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r).trim_end_matches('/');
    rest.to_owned()
}

/// An empty column for the backend at `url`. `embedded` is the reference
/// server this process started, with the faults switched on in it.
pub(crate) async fn new(url: &str, embedded: Option<&[String]>) -> Backend {
    let version = env!("CARGO_PKG_VERSION");
    match embedded {
        Some([]) => {
            let mut b = Backend::new("reference", url, true, version);
            b.about = Some(format!("syncspec reference server {version} (embedded)"));
            b
        }
        Some(faults) => {
            let name = format!("reference --fault {}", faults.join(","));
            let mut b = Backend::new(&name, url, false, version);
            b.about =
                Some(format!("syncspec reference server {version} (embedded) with faults: {}", faults.join(", ")));
            b
        }
        None => {
            let mut b = Backend::new(&name_of(url), url, false, version);
            b.about = about(url).await;
            b
        }
    }
}

/// What the backend answers to `GET /version`, when it answers 200 with text.
async fn about(url: &str) -> Option<String> {
    let client = reqwest::Client::builder().timeout(ABOUT_PATIENCE).build().ok()?;
    let response = client.get(format!("{}/version", url.trim_end_matches('/'))).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let text = response.text().await.ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert_eq!(super::name_of("http://127.0.0.1:3210"), "127.0.0.1:3210");
        assert_eq!(super::name_of("https://happy-otter-123.convex.cloud/"), "happy-otter-123.convex.cloud");
    }
}
