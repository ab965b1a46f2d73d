//! Genesys Cloud region → API and login hosts (the SDKs' region table).

use um_crds::GenesysRegion;

use crate::config::GenesysCloudConfig;

/// (region, environment domain) pairs; API host = `api.<domain>`,
/// login host = `login.<domain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesysEndpoints {
    pub api_base_url: String,
    pub login_base_url: String,
}

/// The hosts of `region` (the one region table is `um_crds::GenesysRegion`,
/// which the CRD's enum also validates), unless the operator configuration
/// points elsewhere (a simulator, a private environment).
pub fn endpoints(region: GenesysRegion, overrides: &GenesysCloudConfig) -> GenesysEndpoints {
    let trimmed = |s: &str| s.trim_end_matches('/').to_owned();
    let api_override =
        (!overrides.api_base_url.is_empty()).then(|| trimmed(&overrides.api_base_url));
    let login_override =
        (!overrides.login_base_url.is_empty()).then(|| trimmed(&overrides.login_base_url));
    if let (Some(api), Some(login)) = (&api_override, &login_override) {
        return GenesysEndpoints {
            api_base_url: api.clone(),
            login_base_url: login.clone(),
        };
    }
    if let Some(api) = &api_override {
        // The SDKs derive the login host from the API host (`//api.` → `//login.`);
        // a simulator without that prefix serves both on one listener.
        return GenesysEndpoints {
            api_base_url: api.clone(),
            login_base_url: api.replacen("//api.", "//login.", 1),
        };
    }
    let domain = region.environment();
    GenesysEndpoints {
        api_base_url: api_override.unwrap_or_else(|| format!("https://api.{domain}")),
        login_base_url: login_override.unwrap_or_else(|| format!("https://login.{domain}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_map_to_api_and_login_hosts() {
        let none = GenesysCloudConfig::default();
        let tokyo = endpoints(GenesysRegion::ApNortheast1, &none);
        assert_eq!(tokyo.api_base_url, "https://api.mypurecloud.jp");
        assert_eq!(tokyo.login_base_url, "https://login.mypurecloud.jp");
        let usw2 = endpoints(GenesysRegion::UsWest2, &none);
        assert_eq!(usw2.api_base_url, "https://api.usw2.pure.cloud");
        let fedramp = endpoints(GenesysRegion::UsEast2, &none);
        assert_eq!(
            fedramp.login_base_url,
            "https://login.use2.us-gov-pure.cloud"
        );
    }

    #[test]
    fn configuration_overrides_the_region() {
        let sim = GenesysCloudConfig {
            api_base_url: "http://127.0.0.1:9999/".into(),
            login_base_url: String::new(),
        };
        let ep = endpoints(GenesysRegion::EuWest1, &sim);
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
            endpoints(GenesysRegion::EuWest1, &both).login_base_url,
            "http://127.0.0.1:2"
        );
    }
}
