//! Genesys Cloud region → API and login hosts (the SDKs' region table).

use crate::config::GenesysCloudConfig;

/// (region, environment domain) pairs; API host = `api.<domain>`,
/// login host = `login.<domain>`.
const REGIONS: &[(&str, &str)] = &[
    ("us-east-1", "mypurecloud.com"),
    ("eu-west-1", "mypurecloud.ie"),
    ("ap-southeast-2", "mypurecloud.com.au"),
    ("ap-northeast-1", "mypurecloud.jp"),
    ("eu-central-1", "mypurecloud.de"),
    ("us-west-2", "usw2.pure.cloud"),
    ("ca-central-1", "cac1.pure.cloud"),
    ("ap-northeast-2", "apne2.pure.cloud"),
    ("eu-west-2", "euw2.pure.cloud"),
    ("ap-south-1", "aps1.pure.cloud"),
    ("us-east-2", "use2.us-gov-pure.cloud"),
    ("sa-east-1", "sae1.pure.cloud"),
    ("me-central-1", "mec1.pure.cloud"),
    ("ap-northeast-3", "apne3.pure.cloud"),
    ("eu-central-2", "euc2.pure.cloud"),
    ("mx-central-1", "mxc1.pure.cloud"),
    ("ap-southeast-1", "apse1.pure.cloud"),
    ("eusc-de-east-1", "edee1.eusc-pure.cloud"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesysEndpoints {
    pub api_base_url: String,
    pub login_base_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown Genesys Cloud region {0:?}; expected a region code such as us-east-1 or ap-northeast-1, or an environment domain such as mypurecloud.jp"
)]
pub struct UnknownRegion(pub String);

/// The environment domain of a region code, or the domain itself when the
/// Tenant names one (`mypurecloud.jp`).
pub fn environment_domain(region: &str) -> Result<&'static str, UnknownRegion> {
    let wanted = region.trim().to_ascii_lowercase();
    REGIONS
        .iter()
        .find(|(code, domain)| *code == wanted || *domain == wanted)
        .map(|(_, domain)| *domain)
        .ok_or_else(|| UnknownRegion(region.to_owned()))
}

/// Hosts to use for a tenant's region; the operator configuration may point
/// both at another server (a simulator in tests).
pub fn endpoints(
    region: &str,
    overrides: &GenesysCloudConfig,
) -> Result<GenesysEndpoints, UnknownRegion> {
    let trimmed = |s: &str| s.trim_end_matches('/').to_owned();
    let api_override =
        (!overrides.api_base_url.is_empty()).then(|| trimmed(&overrides.api_base_url));
    let login_override =
        (!overrides.login_base_url.is_empty()).then(|| trimmed(&overrides.login_base_url));
    if let (Some(api), Some(login)) = (&api_override, &login_override) {
        return Ok(GenesysEndpoints {
            api_base_url: api.clone(),
            login_base_url: login.clone(),
        });
    }
    if let Some(api) = &api_override {
        // The SDKs derive the login host from the API host (`//api.` → `//login.`);
        // a simulator without that prefix serves both on one listener.
        return Ok(GenesysEndpoints {
            api_base_url: api.clone(),
            login_base_url: api.replacen("//api.", "//login.", 1),
        });
    }
    let domain = environment_domain(region)?;
    Ok(GenesysEndpoints {
        api_base_url: api_override.unwrap_or_else(|| format!("https://api.{domain}")),
        login_base_url: login_override.unwrap_or_else(|| format!("https://login.{domain}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_codes_map_to_api_and_login_hosts() {
        let none = GenesysCloudConfig::default();
        let tokyo = endpoints("ap-northeast-1", &none).unwrap();
        assert_eq!(tokyo.api_base_url, "https://api.mypurecloud.jp");
        assert_eq!(tokyo.login_base_url, "https://login.mypurecloud.jp");
        let usw2 = endpoints("US-WEST-2", &none).unwrap();
        assert_eq!(usw2.api_base_url, "https://api.usw2.pure.cloud");
        let fedramp = endpoints("us-east-2", &none).unwrap();
        assert_eq!(
            fedramp.login_base_url,
            "https://login.use2.us-gov-pure.cloud"
        );
    }

    #[test]
    fn environment_domains_are_accepted() {
        let none = GenesysCloudConfig::default();
        assert_eq!(
            endpoints("mypurecloud.ie", &none).unwrap().api_base_url,
            "https://api.mypurecloud.ie"
        );
    }

    #[test]
    fn unknown_region_names_the_value() {
        let err = endpoints("mars-north-1", &GenesysCloudConfig::default()).unwrap_err();
        assert!(err.to_string().contains("mars-north-1"), "{err}");
    }

    #[test]
    fn configuration_overrides_the_region() {
        let sim = GenesysCloudConfig {
            api_base_url: "http://127.0.0.1:9999/".into(),
            login_base_url: String::new(),
        };
        let ep = endpoints("anything-even-unknown", &sim).unwrap();
        assert_eq!(ep.api_base_url, "http://127.0.0.1:9999");
        assert_eq!(
            ep.login_base_url, "http://127.0.0.1:9999",
            "one listener serves both"
        );
        let both = GenesysCloudConfig {
            api_base_url: "http://127.0.0.1:1".into(),
            login_base_url: "http://127.0.0.1:2".into(),
        };
        assert_eq!(
            endpoints("x", &both).unwrap().login_base_url,
            "http://127.0.0.1:2"
        );
    }
}
