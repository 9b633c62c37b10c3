//! A JSON reader for untrusted headers: a pull parser that reads values where they
//! are, builds no value tree, and names the path of a value it refuses.
//!
//! The model file's header and config are a few dozen fields. Reading them through
//! serde's derives, serde_json and serde_path_to_error cost over 100 KB of each
//! WebAssembly module (docs/benchmarks.md, *Where the WebAssembly bytes go*); this
//! reader is what the format needs and nothing more. Memory stays at what the caller
//! keeps: a skipped value costs nothing, however it nests.

use std::fmt;

/// Deepest nesting of arrays and objects accepted (serde_json's limit too).
pub const MAX_DEPTH: usize = 128;

/// Why a text was refused: it is not JSON, or a value in it is not what was wanted.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Malformed JSON; the message says what and at which line and column.
    Syntax(String),
    /// Well-formed, but the value at `path` (`layers[1].w.kind`; `.` for the whole
    /// text) is wrong for the reason given.
    Data { path: String, reason: String },
}

/// Where a value sits in the text, printed as `tokenizer.tokens[5]`; built on the
/// stack while reading and printed only for an error.
#[derive(Clone, Copy)]
pub enum Path<'a> {
    /// The whole text.
    Root,
    /// A field of an object.
    Field(&'a Path<'a>, &'a str),
    /// An element of an array.
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Path::Root => f.write_str("."),
            Path::Field(Path::Root, key) => f.write_str(key),
            Path::Field(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

impl Path<'_> {
    /// A [`Fault::Data`] at this path.
    pub fn fault(&self, reason: impl Into<String>) -> Fault {
        Fault::Data { path: self.to_string(), reason: reason.into() }
    }
}

/// What kind of value comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    fn article(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// A JSON number as written: an integer that fits `u64` or `i64`, else an `f64`.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    U64(u64),
    I64(i64),
    F64(f64),
}

/// The smallest magnitude that rounds to an infinite `f64`: 2¹⁰²⁴ − 2⁹⁷⁰, halfway between
/// `f64::MAX` and 2¹⁰²⁴, where a tie rounds to the even significand, 2¹⁰²⁴. Its 309 digits.
const F64_OVERFLOW: &[u8; 309] = b"\
    17976931348623158079372897140530341507993413271003782693617377898044496829276475\
    09466490179775872070963302864166928879109465555478519404026306574886715058206819\
    08902000708383676273854845817711531764475730270069855571366959622842914819860834\
    936475292719074168444365510704342711559699508093042880177904174497792";

/// Whether the number `token` (JSON's grammar already checked) rounds to a finite `f64`,
/// as `token.parse::<f64>()` tells, without the standard library's float parser: its
/// decimal point against the limit's 309 digits, then the digits themselves.
fn finite_f64(token: &str) -> bool {
    let t = token.strip_prefix('-').unwrap_or(token).as_bytes();
    let (mantissa, exponent) = match t.iter().position(|&b| b == b'e' || b == b'E') {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, &b""[..]),
    };
    // Beyond ±10¹⁵ the exponent decides alone: a token has far fewer digits than that.
    let (negative, e) = match exponent.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, exponent),
    };
    let e = e.iter().fold(0i64, |v, &d| (v * 10 + (d - b'0') as i64).min(1_000_000_000_000_000));
    let e = if negative { -e } else { e };
    let (int, frac) = match mantissa.iter().position(|&b| b == b'.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, &b""[..]),
    };
    let digits = || int.iter().chain(frac).copied().skip_while(|&d| d == b'0');
    let significant = digits().count() as i64;
    if significant == 0 {
        return true; // zero
    }
    // The value lies in [10^(p−1), 10^p); the limit has p = 309.
    let p = significant + e - frac.len() as i64;
    if p != F64_OVERFLOW.len() as i64 {
        return p < F64_OVERFLOW.len() as i64;
    }
    // Same magnitude: the first digit that differs decides; a value that matches the
    // limit's digits and has no more non-zero ones is the limit, which overflows.
    let mut rest = digits();
    for &limit in F64_OVERFLOW {
        match rest.next().unwrap_or(b'0') {
            d if d < limit => return true,
            d if d > limit => return false,
            _ => {}
        }
    }
    false
}

/// A cursor over one JSON text.
pub struct Json<'a> {
    text: &'a [u8],
    pos: usize,
    depth: usize,
}

type Result<T> = std::result::Result<T, Fault>;

impl<'a> Json<'a> {
    pub fn new(text: &'a str) -> Json<'a> {
        Json { text: text.as_bytes(), pos: 0, depth: 0 }
    }

    /// Checks that only whitespace follows the value just read.
    pub fn end(&mut self) -> Result<()> {
        self.skip_ws();
        match self.text.get(self.pos) {
            None => Ok(()),
            Some(_) => Err(self.syntax("trailing characters after the value")),
        }
    }

    /// The kind of the next value (after whitespace), without reading it.
    pub fn peek(&mut self) -> Result<Kind> {
        self.skip_ws();
        Ok(match self.text.get(self.pos) {
            Some(b'n') => Kind::Null,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'-' | b'0'..=b'9') => Kind::Number,
            Some(b'"') => Kind::String,
            Some(b'[') => Kind::Array,
            Some(b'{') => Kind::Object,
            Some(_) => return Err(self.syntax("expected a value")),
            None => return Err(self.syntax("the text ends where a value should be")),
        })
    }

    /// Reads `null` if it comes next: what an optional field may hold instead of a value.
    pub fn null(&mut self) -> Result<bool> {
        if self.peek()? != Kind::Null {
            return Ok(false);
        }
        self.literal("null")?;
        Ok(true)
    }

    /// Reads an object, calling `entry` with each key; `entry` must read (or skip) the value.
    pub fn object(&mut self, at: &Path, mut entry: impl FnMut(&mut Self, &str) -> Result<()>) -> Result<()> {
        self.object_dyn(at, &mut entry)
    }

    /// The loop of [`Json::object`] once, not once per caller's closure: 5.7 KB of the
    /// WebAssembly module (docs/benchmarks.md, "Where 71 KB went").
    fn object_dyn(&mut self, at: &Path, entry: &mut dyn FnMut(&mut Self, &str) -> Result<()>) -> Result<()> {
        self.expect(Kind::Object, at)?;
        self.nest()?;
        self.pos += 1;
        if !self.close(b'}')? {
            loop {
                self.skip_ws();
                if self.text.get(self.pos) != Some(&b'"') {
                    return Err(self.syntax("expected a string key"));
                }
                let key = self.raw_string()?;
                self.skip_ws();
                if self.text.get(self.pos) != Some(&b':') {
                    return Err(self.syntax("expected `:` after a key"));
                }
                self.pos += 1;
                entry(self, &key)?;
                if self.close(b'}')? {
                    break;
                }
                self.comma()?;
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Reads an array, calling `element` with each index; `element` must read the value.
    pub fn array(&mut self, at: &Path, mut element: impl FnMut(&mut Self, usize) -> Result<()>) -> Result<()> {
        self.array_dyn(at, &mut element)
    }

    /// The loop of [`Json::array`] once, as for [`Json::object_dyn`].
    fn array_dyn(&mut self, at: &Path, element: &mut dyn FnMut(&mut Self, usize) -> Result<()>) -> Result<()> {
        self.expect(Kind::Array, at)?;
        self.nest()?;
        self.pos += 1;
        if !self.close(b']')? {
            for i in 0.. {
                element(self, i)?;
                if self.close(b']')? {
                    break;
                }
                self.comma()?;
            }
        }
        self.depth -= 1;
        Ok(())
    }

    pub fn string(&mut self, at: &Path) -> Result<String> {
        self.expect(Kind::String, at)?;
        self.raw_string()
    }

    pub fn bool(&mut self, at: &Path) -> Result<bool> {
        self.expect(Kind::Bool, at)?;
        if self.text[self.pos] == b't' {
            self.literal("true").map(|_| true)
        } else {
            self.literal("false").map(|_| false)
        }
    }

    /// A non-negative integer written without fraction or exponent, at most `max`.
    pub fn integer(&mut self, at: &Path, max: u64) -> Result<u64> {
        self.expect(Kind::Number, at)?;
        let token = self.number_token()?;
        if token.bytes().all(|b| b.is_ascii_digit()) {
            // An all-digit token that overflows u64 is still a too-large size.
            match token.parse::<u64>() {
                Ok(v) if v <= max => return Ok(v),
                _ => return Err(at.fault(format!("{token} exceeds {max}, the largest size a model file may give"))),
            }
        }
        Err(at.fault(format!("{token} is not a non-negative integer")))
    }

    /// Any number, as serde_json would hold it.
    #[cfg(test)]
    pub fn number(&mut self, at: &Path) -> Result<Number> {
        self.expect(Kind::Number, at)?;
        let token = self.number_token()?;
        if let Ok(v) = token.parse::<u64>() {
            return Ok(Number::U64(v));
        }
        if let Ok(v) = token.parse::<i64>() {
            return Ok(Number::I64(v));
        }
        match token.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Number::F64(v)),
            _ => Err(at.fault(format!("{token} is out of range for a 64-bit float"))),
        }
    }

    /// The next value, checked as [`Json::value`] reads it (within `max` values; every
    /// number one that a 64-bit float holds), as its text. Text is what the provenance
    /// keeps: a value tree and the float parser cost the WebAssembly module 28 KB
    /// (docs/benchmarks.md), and JavaScript's `JSON.parse` or serde_json read the text.
    pub fn raw_value(&mut self, at: &Path, max: usize) -> Result<&'a str> {
        fn check(j: &mut Json, at: &Path, left: &mut usize, max: usize) -> Result<()> {
            *left = left.checked_sub(1).ok_or_else(|| at.fault(format!("holds more than {max} values")))?;
            match j.peek()? {
                Kind::Number => {
                    let token = j.number_token()?;
                    if !finite_f64(token) {
                        return Err(at.fault(format!("{token} is out of range for a 64-bit float")));
                    }
                    Ok(())
                }
                Kind::Array => j.array(at, |j, i| check(j, &Path::Index(at, i), left, max)),
                Kind::Object => j.object(at, |j, k| check(j, &Path::Field(at, k), left, max)),
                _ => j.skip(),
            }
        }
        self.peek()?;
        let start = self.pos;
        let mut left = max;
        check(self, at, &mut left, max)?;
        // The text is a `str` and both ends are at ASCII bytes (a value's first and last).
        std::str::from_utf8(&self.text[start..self.pos]).map_err(|_| self.syntax("a value that is not UTF-8"))
    }

    /// The next value as a `serde_json::Value`, refused once it holds more than `max`
    /// values in all (every object, array, string, number, … counts one): a value tree
    /// costs far more memory than its JSON, so untrusted text gets a budget. The tests'
    /// reference for [`Json::raw_value`].
    #[cfg(test)]
    pub fn value(&mut self, at: &Path, max: usize) -> Result<serde_json::Value> {
        fn read(j: &mut Json, at: &Path, left: &mut usize, max: usize) -> Result<serde_json::Value> {
            use serde_json::Value;
            *left = left.checked_sub(1).ok_or_else(|| at.fault(format!("holds more than {max} values")))?;
            Ok(match j.peek()? {
                Kind::Null => {
                    j.null()?;
                    Value::Null
                }
                Kind::Bool => Value::Bool(j.bool(at)?),
                Kind::Number => match j.number(at)? {
                    Number::U64(v) => v.into(),
                    Number::I64(v) => v.into(),
                    Number::F64(v) => v.into(),
                },
                Kind::String => Value::String(j.string(at)?),
                Kind::Array => {
                    let mut v = vec![];
                    j.array(at, |j, i| {
                        v.push(read(j, &Path::Index(at, i), left, max)?);
                        Ok(())
                    })?;
                    Value::Array(v)
                }
                Kind::Object => {
                    let mut m = serde_json::Map::new();
                    j.object(at, |j, k| {
                        let v = read(j, &Path::Field(at, k), left, max)?;
                        m.insert(k.to_string(), v);
                        Ok(())
                    })?;
                    Value::Object(m)
                }
            })
        }
        let mut left = max;
        read(self, at, &mut left, max)
    }

    /// Reads past the next value, whatever it is.
    pub fn skip(&mut self) -> Result<()> {
        match self.peek()? {
            Kind::Null => self.literal("null"),
            Kind::Bool => self.bool(&Path::Root).map(drop),
            Kind::Number => self.number_token().map(drop),
            Kind::String => self.raw_string().map(drop),
            Kind::Array => self.array(&Path::Root, |j, _| j.skip()),
            Kind::Object => self.object(&Path::Root, |j, _| j.skip()),
        }
    }

    /// A data fault for a value of the wrong kind, or Ok if the next value is `kind`.
    fn expect(&mut self, kind: Kind, at: &Path) -> Result<()> {
        match self.peek()? {
            found if found == kind => Ok(()),
            found => Err(at.fault(format!("expected {}, found {}", kind.article(), found.article()))),
        }
    }

    fn nest(&mut self) -> Result<()> {
        if self.depth == MAX_DEPTH {
            return Err(self.syntax(&format!("arrays and objects nest deeper than {MAX_DEPTH}")));
        }
        self.depth += 1;
        Ok(())
    }

    /// Consumes `close` if it comes next.
    fn close(&mut self, close: u8) -> Result<bool> {
        self.skip_ws();
        match self.text.get(self.pos) {
            Some(&b) if b == close => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(self.syntax("the text ends inside an array or object")),
        }
    }

    fn comma(&mut self) -> Result<()> {
        match self.text.get(self.pos) {
            Some(b',') => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.syntax("expected `,` or the end of the array or object")),
        }
    }

    fn literal(&mut self, word: &str) -> Result<()> {
        if self.text[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.syntax("expected `null`, `true` or `false`"))
        }
    }

    /// The characters of a number (checked against JSON's grammar), not yet converted.
    fn number_token(&mut self) -> Result<&'a str> {
        let start = self.pos;
        let digits = |j: &mut Self| {
            let from = j.pos;
            while j.text.get(j.pos).is_some_and(u8::is_ascii_digit) {
                j.pos += 1;
            }
            j.pos - from
        };
        if self.text.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let int = digits(self);
        let ok = int > 0 && !(int > 1 && self.text[int_start] == b'0');
        let mut ok = ok;
        if ok && self.text.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            ok = digits(self) > 0;
        }
        if ok && matches!(self.text.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.text.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            ok = digits(self) > 0;
        }
        if !ok {
            return Err(self.syntax("malformed number"));
        }
        // Only ASCII was consumed, so this cannot split a character.
        Ok(std::str::from_utf8(&self.text[start..self.pos]).expect("ASCII"))
    }

    /// A string whose opening quote is at `pos`, with its escapes resolved.
    fn raw_string(&mut self) -> Result<String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run = self.pos;
            while self.text.get(self.pos).is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20) {
                self.pos += 1;
            }
            // The text is a `str` and the run stops only at ASCII bytes: whole characters.
            out.push_str(std::str::from_utf8(&self.text[run..self.pos]).expect("a str's characters"));
            match self.text.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                Some(_) => return Err(self.syntax("control character inside a string")),
                None => return Err(self.syntax("the text ends inside a string")),
            }
        }
    }

    /// The character of the escape after a backslash.
    fn escape(&mut self) -> Result<char> {
        let c = self.text.get(self.pos).copied();
        self.pos += 1;
        Ok(match c {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let high = self.hex4()?;
                let code = match high {
                    0xD800..=0xDBFF => {
                        if !self.text[self.pos..].starts_with(b"\\u") {
                            return Err(self.syntax("unpaired surrogate in a \\u escape"));
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.syntax("unpaired surrogate in a \\u escape"));
                        }
                        0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(self.syntax("unpaired surrogate in a \\u escape")),
                    c => c,
                };
                char::from_u32(code).expect("surrogates handled above")
            }
            _ => {
                self.pos -= 1;
                return Err(self.syntax("invalid escape in a string"));
            }
        })
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self.text.get(self.pos..self.pos + 4).ok_or_else(|| self.syntax("short \\u escape"))?;
        let mut v = 0;
        for &d in digits {
            let d = (d as char).to_digit(16).ok_or_else(|| self.syntax("invalid \\u escape"))?;
            v = v * 16 + d;
        }
        self.pos += 4;
        Ok(v)
    }

    fn skip_ws(&mut self) {
        while self.text.get(self.pos).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// A syntax fault at the current position, as line and column (1-based, in bytes).
    fn syntax(&self, what: &str) -> Fault {
        let before = &self.text[..self.pos.min(self.text.len())];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let column = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
        Fault::Syntax(format!("{what} at line {line} column {column}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<serde_json::Value> {
        let mut j = Json::new(text);
        let v = j.value(&Path::Root, usize::MAX)?;
        j.end()?;
        Ok(v)
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for text in [
            r#"{"a": [1, -2, 3.5, 1e3, -0.25E-2, 18446744073709551615, -9223372036854775808], "b": {"c": null}}"#,
            r#"  [true, false, null, "", "x\"y\\z\/\b\f\n\r\t", "\u00e9\ud83d\ude00", "é😀"]  "#,
            "{}",
            "[]",
            "0",
            r#""plain""#,
            "[[[[]]]]",
            "18446744073709551616",
        ] {
            let ours = read(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    /// `finite_f64` against the standard library's correctly rounded parser, at the
    /// overflow limit's digits and one unit either side at every position, written with
    /// the point and the exponent moved, signs, zeros, and exponents too large for any
    /// integer type.
    #[test]
    fn finite_f64_is_what_the_float_parser_says() {
        let limit = std::str::from_utf8(F64_OVERFLOW).unwrap();
        let mut tokens: Vec<String> = vec![];
        let mut near = vec![limit.to_string(), format!("{limit}0"), format!("{limit}0001"), limit[..308].to_string()];
        for i in (0..309).step_by(7).chain(300..309) {
            for delta in [-1i8, 1] {
                let mut d = limit.as_bytes().to_vec();
                let v = d[i] as i8 - b'0' as i8 + delta;
                if (0..=9).contains(&v) {
                    d[i] = b'0' + v as u8;
                    near.push(String::from_utf8(d).unwrap());
                }
            }
        }
        for n in &near {
            let n = n.trim_start_matches('0');
            tokens.push(n.to_string());
            tokens.push(format!("-{n}"));
            tokens.push(format!("{}.{}e308", &n[..1], &n[1..]));
            tokens.push(format!("0.000{n}e3"));
            tokens.push(format!("{}.{}E+{}", &n[..5], &n[5..], n.len() - 5));
            tokens.push(format!("{n}e-1"));
            tokens.push(format!("{n}e1"));
        }
        let fixed = "0 -0 0.0 0e999999999999999999999999 0.000e-5 1e308 1e309 -1e309 9.99e307 1.7976931348623157e308 \
            1.7976931348623158e308 1.7976931348623159e308 17976931348623157e292 1e-400 1e999999999999999999999999 \
            1e-999999999999999999999999 123.456 18446744073709551616";
        tokens.extend(fixed.split_whitespace().map(String::from));
        for t in &tokens {
            assert_eq!(finite_f64(t), t.parse::<f64>().unwrap().is_finite(), "{t}");
        }
        let overflow = tokens.iter().filter(|t| !finite_f64(t)).count();
        assert!(
            overflow > 20 && overflow < tokens.len() - 20,
            "both sides are covered: {overflow} of {}",
            tokens.len()
        );
    }

    /// The provenance's reading: the text of the value, checked as `value` checks it.
    #[test]
    fn raw_value_is_the_checked_text() {
        let text = r#" {"a": [1, 2.5e3, {"b": "x\"y"}], "c": null} "#;
        let mut j = Json::new(text);
        assert_eq!(j.raw_value(&Path::Root, 7), Ok(text.trim()));
        j.end().unwrap();
        assert_eq!(
            Json::new(text).raw_value(&Path::Root, 6),
            Err(Fault::Data { path: "c".into(), reason: "holds more than 6 values".into() })
        );
        for text in [r#"{"a": [1, 1e309]}"#, r#"[1, {"a": [[], "\ud800"]}]"#, "[1,]", r#"{"a" 1}"#] {
            let (raw, value) = (Json::new(text).raw_value(&Path::Root, 100), Json::new(text).value(&Path::Root, 100));
            assert_eq!(raw.map(drop), value.map(drop), "{text}");
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for text in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\": 1,}",
            "{a: 1}",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "nul",
            "tru",
            "\"abc",
            "\"a\u{1}b\"",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\u12\"",
            "[1] 2",
            "NaN",
            "1e400",
        ] {
            assert!(serde_json::from_str::<serde_json::Value>(text).is_err(), "serde_json reads {text:?}");
            assert!(read(text).is_err(), "{text:?} was read");
        }
    }

    #[test]
    fn syntax_faults_say_where() {
        let Err(Fault::Syntax(m)) = read("{\"a\": [1,\n  2,, 3]}") else { panic!() };
        assert_eq!(m, "expected a value at line 2 column 5");
    }

    #[test]
    fn nesting_is_bounded_and_skipping_builds_nothing() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let text = deep(MAX_DEPTH);
        let mut j = Json::new(&text);
        j.skip().unwrap();
        j.end().unwrap();
        let text = deep(MAX_DEPTH + 1);
        let Err(Fault::Syntax(m)) = Json::new(&text).skip() else { panic!() };
        assert!(m.contains("deeper than 128"), "{m}");
    }

    #[test]
    fn data_faults_name_the_path() {
        // `{"layers": [.., {"w": {"rows": V}}]}` with V at index 1.
        fn rows(v: &str) -> Fault {
            let text = format!(r#"{{"layers": [{{}}, {{"w": {{"rows": {v}}}}}]}}"#);
            let mut j = Json::new(&text);
            let root = Path::Root;
            j.object(&root, |j, k| {
                let layers = Path::Field(&root, k);
                j.array(&layers, |j, i| {
                    let layer = Path::Index(&layers, i);
                    j.object(&layer, |j, k| {
                        let w = Path::Field(&layer, k);
                        j.object(&w, |j, k| j.integer(&Path::Field(&w, k), u32::MAX as u64).map(drop))
                    })
                })
            })
            .unwrap_err()
        }
        let data = |reason: &str| Fault::Data { path: "layers[1].w.rows".into(), reason: reason.into() };
        assert_eq!(rows("\"x\""), data("expected a number, found a string"));
        assert_eq!(rows("1.5"), data("1.5 is not a non-negative integer"));
        assert_eq!(rows("-1"), data("-1 is not a non-negative integer"));
        assert_eq!(rows("99999999999"), data("99999999999 exceeds 4294967295, the largest size a model file may give"));
        assert_eq!(
            rows("99999999999999999999999"),
            data("99999999999999999999999 exceeds 4294967295, the largest size a model file may give")
        );
        assert!(matches!(rows("[1"), Fault::Data { .. }), "the kind is checked before the syntax");
        assert!(matches!(rows("01"), Fault::Syntax(_)));
    }
}
