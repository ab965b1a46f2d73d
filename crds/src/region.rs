use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Genesys Cloud region (AWS region name of the organisation's home).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum GenesysRegion {
    #[serde(rename = "us-east-1")]
    UsEast1,
    #[serde(rename = "eu-west-1")]
    EuWest1,
    #[serde(rename = "ap-southeast-2")]
    ApSoutheast2,
    #[serde(rename = "ap-northeast-1")]
    ApNortheast1,
    #[serde(rename = "eu-central-1")]
    EuCentral1,
    #[serde(rename = "us-west-2")]
    UsWest2,
    #[serde(rename = "ca-central-1")]
    CaCentral1,
    #[serde(rename = "ap-northeast-2")]
    ApNortheast2,
    #[serde(rename = "eu-west-2")]
    EuWest2,
    #[serde(rename = "ap-south-1")]
    ApSouth1,
    // FedRAMP
    #[serde(rename = "us-east-2")]
    UsEast2,
    #[serde(rename = "sa-east-1")]
    SaEast1,
    #[serde(rename = "me-central-1")]
    MeCentral1,
    #[serde(rename = "ap-northeast-3")]
    ApNortheast3,
    #[serde(rename = "eu-central-2")]
    EuCentral2,
    #[serde(rename = "mx-central-1")]
    MxCentral1,
    #[serde(rename = "ap-southeast-1")]
    ApSoutheast1,
    // EU sovereign cloud; only the JS SDK lists it so far.
    #[serde(rename = "eusc-de-east-1")]
    EuscDeEast1,
}

impl GenesysRegion {
    pub const ALL: [GenesysRegion; 18] = [
        GenesysRegion::UsEast1,
        GenesysRegion::EuWest1,
        GenesysRegion::ApSoutheast2,
        GenesysRegion::ApNortheast1,
        GenesysRegion::EuCentral1,
        GenesysRegion::UsWest2,
        GenesysRegion::CaCentral1,
        GenesysRegion::ApNortheast2,
        GenesysRegion::EuWest2,
        GenesysRegion::ApSouth1,
        GenesysRegion::UsEast2,
        GenesysRegion::SaEast1,
        GenesysRegion::MeCentral1,
        GenesysRegion::ApNortheast3,
        GenesysRegion::EuCentral2,
        GenesysRegion::MxCentral1,
        GenesysRegion::ApSoutheast1,
        GenesysRegion::EuscDeEast1,
    ];

    /// The region name as written in a Tenant (`eu-west-1`).
    pub fn as_str(self) -> &'static str {
        match self {
            GenesysRegion::UsEast1 => "us-east-1",
            GenesysRegion::EuWest1 => "eu-west-1",
            GenesysRegion::ApSoutheast2 => "ap-southeast-2",
            GenesysRegion::ApNortheast1 => "ap-northeast-1",
            GenesysRegion::EuCentral1 => "eu-central-1",
            GenesysRegion::UsWest2 => "us-west-2",
            GenesysRegion::CaCentral1 => "ca-central-1",
            GenesysRegion::ApNortheast2 => "ap-northeast-2",
            GenesysRegion::EuWest2 => "eu-west-2",
            GenesysRegion::ApSouth1 => "ap-south-1",
            GenesysRegion::UsEast2 => "us-east-2",
            GenesysRegion::SaEast1 => "sa-east-1",
            GenesysRegion::MeCentral1 => "me-central-1",
            GenesysRegion::ApNortheast3 => "ap-northeast-3",
            GenesysRegion::EuCentral2 => "eu-central-2",
            GenesysRegion::MxCentral1 => "mx-central-1",
            GenesysRegion::ApSoutheast1 => "ap-southeast-1",
            GenesysRegion::EuscDeEast1 => "eusc-de-east-1",
        }
    }

    /// The environment domain the SDKs prefix with `api.` and `login.`.
    pub fn environment(self) -> &'static str {
        match self {
            GenesysRegion::UsEast1 => "mypurecloud.com",
            GenesysRegion::EuWest1 => "mypurecloud.ie",
            GenesysRegion::ApSoutheast2 => "mypurecloud.com.au",
            GenesysRegion::ApNortheast1 => "mypurecloud.jp",
            GenesysRegion::EuCentral1 => "mypurecloud.de",
            GenesysRegion::UsWest2 => "usw2.pure.cloud",
            GenesysRegion::CaCentral1 => "cac1.pure.cloud",
            GenesysRegion::ApNortheast2 => "apne2.pure.cloud",
            GenesysRegion::EuWest2 => "euw2.pure.cloud",
            GenesysRegion::ApSouth1 => "aps1.pure.cloud",
            GenesysRegion::UsEast2 => "use2.us-gov-pure.cloud",
            GenesysRegion::SaEast1 => "sae1.pure.cloud",
            GenesysRegion::MeCentral1 => "mec1.pure.cloud",
            GenesysRegion::ApNortheast3 => "apne3.pure.cloud",
            GenesysRegion::EuCentral2 => "euc2.pure.cloud",
            GenesysRegion::MxCentral1 => "mxc1.pure.cloud",
            GenesysRegion::ApSoutheast1 => "apse1.pure.cloud",
            GenesysRegion::EuscDeEast1 => "edee1.eusc-pure.cloud",
        }
    }

    /// Host of the Platform API (`api.mypurecloud.ie`).
    pub fn api_host(self) -> String {
        format!("api.{}", self.environment())
    }

    /// Host of the OAuth login service (`login.mypurecloud.ie`).
    pub fn login_host(self) -> String {
        format!("login.{}", self.environment())
    }

    /// `https://api.<environment>`.
    pub fn api_base_url(self) -> String {
        format!("https://{}", self.api_host())
    }

    /// `https://login.<environment>`.
    pub fn login_base_url(self) -> String {
        format!("https://{}", self.login_host())
    }
}

impl fmt::Display for GenesysRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_region_serialises_as_its_name_and_has_distinct_hosts() {
        let mut hosts = std::collections::BTreeSet::new();
        for region in GenesysRegion::ALL {
            assert_eq!(
                serde_json::to_value(region).unwrap(),
                serde_json::json!(region.as_str())
            );
            let back: GenesysRegion =
                serde_json::from_value(serde_json::json!(region.as_str())).unwrap();
            assert_eq!(back, region);
            assert!(
                hosts.insert(region.api_host()),
                "duplicate host for {region}"
            );
            assert_eq!(
                region.login_host().strip_prefix("login."),
                region.api_host().strip_prefix("api.")
            );
        }
        assert_eq!(hosts.len(), 18);
    }

    #[test]
    fn hosts_match_the_fact_sheet() {
        assert_eq!(
            GenesysRegion::EuWest1.api_base_url(),
            "https://api.mypurecloud.ie"
        );
        assert_eq!(
            GenesysRegion::UsEast2.login_host(),
            "login.use2.us-gov-pure.cloud"
        );
        assert_eq!(
            GenesysRegion::EuscDeEast1.api_host(),
            "api.edee1.eusc-pure.cloud"
        );
    }
}
