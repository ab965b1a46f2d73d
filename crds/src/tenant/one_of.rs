/// Declares an externally tagged enum (`{"<key>": {...}}`, exactly one key)
/// whose schema is the structural form the apiserver accepts: an object with
/// one optional property per variant plus CEL rules for "exactly one".
/// (schemars' `oneOf` with differing properties is not a structural schema.)
macro_rules! one_of_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident (what = $what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident($spec:ty) = $key:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $key)] $variant($spec), )*
        }

        impl $name {
            /// Every variant key, in declaration order.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// The key this value is written under in YAML.
            pub fn key(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => $key, )*
                }
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let mut properties = serde_json::Map::new();
                $( properties.insert($key.to_owned(), generator.subschema_for::<$spec>().to_value()); )*
                crate::cel::exactly_one_of_schema(properties, Self::KEYS, $what)
            }
        }
    };
}

pub(crate) use one_of_enum;
