//! The strings of a fold: ids, numbers and labels, nearly all short. Up to
//! 22 bytes are kept inline, in the 24 bytes a `String` takes, so that a
//! fold's account, phone number, customer and labels cost no allocation
//! when they are copied from an event, decoded from a spill file or
//! dropped; a longer one (a conversation id) is boxed.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use serde::de::{Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

const INLINE: usize = 22;

#[derive(Clone)]
pub enum Text {
    Inline { len: u8, bytes: [u8; INLINE] },
    Boxed(Box<str>),
}

impl Text {
    pub fn as_str(&self) -> &str {
        match self {
            Text::Inline { len, bytes } => {
                // SAFETY: the bytes were copied whole from a `str` of this
                // length (`From<&str>`).
                unsafe { std::str::from_utf8_unchecked(&bytes[..*len as usize]) }
            }
            Text::Boxed(s) => s,
        }
    }
}

impl Text {
    /// The bytes it holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Text::Inline { .. } => 0,
            Text::Boxed(s) => s.len() + 16,
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        if s.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Text::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            Text::Boxed(s.into())
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        if s.len() <= INLINE {
            Text::from(s.as_str())
        } else {
            Text::Boxed(s.into_boxed_str())
        }
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = Text;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Text, E> {
                Ok(Text::from(s))
            }

            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Text, E> {
                Ok(Text::from(s))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_texts_are_their_strings() {
        assert_eq!(std::mem::size_of::<Text>(), 24);
        let long = "a conversation id of 32 bytes...";
        for s in ["", "6281234567890", "authentication_intern", long] {
            let t = Text::from(s);
            assert_eq!(t.as_str(), s);
            assert_eq!(t, Text::from(s.to_string()));
            let encoded = postcard::to_extend(&t, vec![]).unwrap();
            assert_eq!(postcard::from_bytes::<Text>(&encoded).unwrap(), t);
        }
        assert!(matches!(Text::from(long), Text::Boxed(_)));
        let (b, abc) = (Text::from("b"), Text::from("abc"));
        assert_eq!(b.cmp(&abc), Ordering::Greater, "ordered as strings");
    }
}
