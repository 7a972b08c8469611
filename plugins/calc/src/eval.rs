//! The expression evaluator: a recursive-descent parser that computes as it parses, reporting errors by position.
//!
//! Grammar (lowest precedence first):
//!
//! ```text
//! expr    = term (("+" | "-") term)*
//! term    = unary (("*" | "/" | "%") unary)*
//! unary   = ("-" | "+") unary | power
//! power   = primary (("^" | "**") unary)?      right-associative; -2^2 = -4
//! primary = number | name | name "(" expr ("," expr)* ")" | "(" expr ")"
//! ```

use std::f64::consts;
use std::fmt;

/// Deep enough for any honest expression, shallow enough that the guest's
/// 1 MiB stack cannot overflow on `((((...` input.
const MAX_DEPTH: usize = 200;

/// Whether the expression is malformed (the caller's mistake) or well formed
/// but mathematically undefined (division by zero, sqrt of a negative, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Syntax,
    Math,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    pub kind: ErrorKind,
    /// 1-based character position in the expression.
    pub position: usize,
    pub message: String,
    /// The text from `position` on, shortened, so the reader can find the spot.
    pub near: String,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "position {}: {}", self.position, self.message)?;
        if self.near.is_empty() {
            write!(f, " (at the end of the expression)")
        } else {
            write!(f, " (near `{}`)", self.near)
        }
    }
}

/// Evaluates `expression` to a finite number.
pub fn evaluate(expression: &str) -> Result<f64, EvalError> {
    let mut parser = Parser {
        chars: expression.chars().collect(),
        pos: 0,
        depth: 0,
    };
    let value = parser.expr()?;
    parser.skip_ws();
    match parser.peek() {
        None => Ok(value),
        Some(')') => Err(parser.syntax(parser.pos, "unmatched `)`".into())),
        Some(c) => Err(parser.syntax(
            parser.pos,
            format!("unexpected `{c}`, expected an operator"),
        )),
    }
}

/// Formats a value for the model: integers without a fraction, very large or
/// very small magnitudes in exponent notation, everything else in the
/// shortest form that reads back as the same number.
pub fn format_number(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let magnitude = value.abs();
    if value.fract() == 0.0 && magnitude < 1e15 {
        format!("{}", value as i64)
    } else if !(1e-6..1e15).contains(&magnitude) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error(&self, kind: ErrorKind, at: usize, message: String) -> EvalError {
        let near: String = self.chars.iter().skip(at).take(12).collect();
        let near = if self.chars.len() > at + 12 {
            format!("{near}...")
        } else {
            near
        };
        EvalError {
            kind,
            position: at + 1,
            message,
            near,
        }
    }

    fn syntax(&self, at: usize, message: String) -> EvalError {
        self.error(ErrorKind::Syntax, at, message)
    }

    fn math(&self, at: usize, message: String) -> EvalError {
        self.error(ErrorKind::Math, at, message)
    }

    /// Overflow shows up as infinity and undefined results as NaN; both are
    /// reported where the operation that produced them starts.
    fn finite(&self, value: f64, at: usize, what: &str) -> Result<f64, EvalError> {
        if value.is_finite() {
            Ok(value)
        } else if value.is_nan() {
            Err(self.math(at, format!("{what} is undefined")))
        } else {
            Err(self.math(at, format!("{what} overflows")))
        }
    }

    fn enter(&mut self) -> Result<(), EvalError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.syntax(
                self.pos,
                format!("expression nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<f64, EvalError> {
        self.enter()?;
        let mut value = self.term()?;
        loop {
            self.skip_ws();
            let at = self.pos;
            match self.peek() {
                Some('+') => {
                    self.pos += 1;
                    let rhs = self.term()?;
                    value = self.finite(value + rhs, at, "the sum")?;
                }
                Some('-') => {
                    self.pos += 1;
                    let rhs = self.term()?;
                    value = self.finite(value - rhs, at, "the difference")?;
                }
                _ => break,
            }
        }
        self.depth -= 1;
        Ok(value)
    }

    fn term(&mut self) -> Result<f64, EvalError> {
        let mut value = self.unary()?;
        loop {
            self.skip_ws();
            let at = self.pos;
            match self.peek() {
                // `**` is power, handled below `unary`.
                Some('*') if self.peek_at(1) != Some('*') => {
                    self.pos += 1;
                    let rhs = self.unary()?;
                    value = self.finite(value * rhs, at, "the product")?;
                }
                Some('/') => {
                    self.pos += 1;
                    let divisor = self.unary()?;
                    if divisor == 0.0 {
                        return Err(self.math(at, "division by zero".into()));
                    }
                    value = self.finite(value / divisor, at, "the quotient")?;
                }
                Some('%') => {
                    self.pos += 1;
                    let divisor = self.unary()?;
                    if divisor == 0.0 {
                        return Err(self.math(at, "remainder of division by zero".into()));
                    }
                    value %= divisor;
                }
                _ => break,
            }
        }
        Ok(value)
    }

    fn unary(&mut self) -> Result<f64, EvalError> {
        self.skip_ws();
        match self.peek() {
            Some('-') => {
                self.pos += 1;
                self.enter()?;
                let value = -self.unary()?;
                self.depth -= 1;
                Ok(value)
            }
            Some('+') => {
                self.pos += 1;
                self.enter()?;
                let value = self.unary()?;
                self.depth -= 1;
                Ok(value)
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<f64, EvalError> {
        let base = self.primary()?;
        self.skip_ws();
        let at = self.pos;
        let width = match (self.peek(), self.peek_at(1)) {
            (Some('^'), _) => 1,
            (Some('*'), Some('*')) => 2,
            _ => return Ok(base),
        };
        self.pos += width;
        self.enter()?;
        let exponent = self.unary()?;
        self.depth -= 1;
        if base == 0.0 && exponent < 0.0 {
            return Err(self.math(at, "division by zero (zero to a negative power)".into()));
        }
        self.finite(base.powf(exponent), at, "the power")
    }

    fn primary(&mut self) -> Result<f64, EvalError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(c) if c.is_alphabetic() || c == '_' => {
                let name = self.name();
                self.skip_ws();
                if self.peek() == Some('(') {
                    let open = self.pos;
                    self.pos += 1;
                    let args = self.arguments(open)?;
                    call_function(self, &name, start, &args)
                } else {
                    constant(&name).ok_or_else(|| {
                        self.syntax(
                            start,
                            format!("unknown name `{name}` (constants are pi and e)"),
                        )
                    })
                }
            }
            Some('(') => {
                self.pos += 1;
                let value = self.expr()?;
                self.skip_ws();
                if self.peek() == Some(')') {
                    self.pos += 1;
                    Ok(value)
                } else {
                    Err(self.syntax(
                        self.pos,
                        format!("expected `)` for the `(` at position {}", start + 1),
                    ))
                }
            }
            Some(c) => Err(self.syntax(
                start,
                format!("unexpected `{c}`, expected a number, a name or `(`"),
            )),
            None => Err(self.syntax(
                start,
                "unexpected end of expression, expected a number".into(),
            )),
        }
    }

    fn number(&mut self) -> Result<f64, EvalError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
            self.pos += 1;
        }
        // An exponent only when digits follow, so `2e` stays "2 then the
        // constant e" and fails as a missing operator rather than a bad number.
        if matches!(self.peek(), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.peek_at(1), Some('+' | '-')));
            if self.peek_at(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1 + sign;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        text.parse::<f64>()
            .map_err(|_| self.syntax(start, format!("`{text}` is not a number")))
            .and_then(|value| self.finite(value, start, "the number"))
    }

    fn name(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// Comma-separated expressions up to the `)` matching the `(` at `open`.
    fn arguments(&mut self, open: usize) -> Result<Vec<f64>, EvalError> {
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(args);
                }
                _ => {
                    return Err(self.syntax(
                        self.pos,
                        format!("expected `,` or `)` for the `(` at position {}", open + 1),
                    ));
                }
            }
        }
    }
}

fn constant(name: &str) -> Option<f64> {
    match name {
        "pi" | "PI" | "π" => Some(consts::PI),
        "e" | "E" => Some(consts::E),
        _ => None,
    }
}

const FUNCTIONS: &str = "sqrt, abs, ln, log10, sin, cos, tan, min, max, round, floor, ceil";

fn call_function(parser: &Parser, name: &str, at: usize, args: &[f64]) -> Result<f64, EvalError> {
    let arity = |expected: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(parser.syntax(at, format!("{name} takes {expected}, got {}", args.len())))
        }
    };
    let one = || arity("1 argument", args.len() == 1).map(|()| args[0]);
    let value = match name {
        "sqrt" => {
            let x = one()?;
            if x < 0.0 {
                return Err(parser.math(
                    at,
                    format!("sqrt of a negative number ({})", format_number(x)),
                ));
            }
            x.sqrt()
        }
        "abs" => one()?.abs(),
        "ln" | "log10" => {
            let x = one()?;
            if x <= 0.0 {
                return Err(parser.math(
                    at,
                    format!("{name} of a non-positive number ({})", format_number(x)),
                ));
            }
            if name == "ln" { x.ln() } else { x.log10() }
        }
        "sin" => one()?.sin(),
        "cos" => one()?.cos(),
        "tan" => one()?.tan(),
        "floor" => one()?.floor(),
        "ceil" => one()?.ceil(),
        "min" | "max" => {
            arity("at least 1 argument", !args.is_empty())?;
            let pick = if name == "min" { f64::min } else { f64::max };
            args.iter().copied().reduce(pick).unwrap_or(f64::NAN)
        }
        "round" => {
            arity("1 or 2 arguments", matches!(args.len(), 1 | 2))?;
            match args.get(1) {
                None => args[0].round(),
                Some(&digits) => {
                    if digits.fract() != 0.0 || !(-15.0..=15.0).contains(&digits) {
                        return Err(parser.syntax(
                            at,
                            "round's digits must be a whole number from -15 to 15".into(),
                        ));
                    }
                    let scale = 10f64.powi(digits as i32);
                    (args[0] * scale).round() / scale
                }
            }
        }
        _ => {
            return Err(parser.syntax(
                at,
                format!("unknown function `{name}` (known: {FUNCTIONS})"),
            ));
        }
    };
    parser.finite(value, at, &format!("{name}(...)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(s: &str) -> f64 {
        evaluate(s).unwrap_or_else(|err| panic!("{s}: {err}"))
    }

    fn err(s: &str) -> EvalError {
        evaluate(s).expect_err(s)
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(eval("1 + 2 * 3"), 7.0);
        assert_eq!(eval("(1 + 2) * 3"), 9.0);
        assert_eq!(eval("10 - 4 - 3"), 3.0);
        assert_eq!(eval("100 / 10 / 5"), 2.0);
        assert_eq!(eval("2 ^ 3 ^ 2"), 512.0);
        assert_eq!(eval("2 ** 10"), 1024.0);
        assert_eq!(eval("-2 ^ 2"), -4.0);
        assert_eq!(eval("2 ^ -1"), 0.5);
        assert_eq!(eval("--3"), 3.0);
        assert_eq!(eval("7 % 3"), 1.0);
        assert_eq!(eval("2 * (3 + 4) ^ 2 / sqrt(16)"), 24.5);
        assert_eq!(eval("1.5e3 + .5"), 1500.5);
    }

    #[test]
    fn functions_and_constants() {
        assert!((eval("sin(pi / 2)") - 1.0).abs() < 1e-12);
        assert!((eval("ln(e)") - 1.0).abs() < 1e-12);
        assert_eq!(eval("log10(1000)"), 3.0);
        assert_eq!(eval("max(1, 5, 3)"), 5.0);
        assert_eq!(eval("min(4)"), 4.0);
        assert_eq!(eval("round(2.5)"), 3.0);
        assert_eq!(eval("round(1.23456, 3)"), 1.235);
        assert_eq!(eval("floor(-1.5) + ceil(1.2) + abs(-3)"), 3.0);
    }

    #[test]
    fn errors_name_the_position() {
        let e = err("1 / (2 - 2)");
        assert_eq!((e.kind, e.position), (ErrorKind::Math, 3));
        assert_eq!(
            e.to_string(),
            "position 3: division by zero (near `/ (2 - 2)`)"
        );
        assert_eq!(err("5 % 0").kind, ErrorKind::Math);
        assert_eq!(err("0 ^ -1").kind, ErrorKind::Math);
        assert_eq!(err("sqrt(-4)").kind, ErrorKind::Math);
        assert_eq!(err("ln(0)").kind, ErrorKind::Math);
        assert_eq!(err("10 ^ 400").kind, ErrorKind::Math);
        let e = err("2 * (3 + 4");
        assert_eq!((e.kind, e.position), (ErrorKind::Syntax, 11));
        assert!(e.message.contains("position 5"), "{e}");
        assert_eq!(err("1 + ").position, 5);
        assert_eq!(err("2e").position, 2);
        assert_eq!(err("1 2").position, 3);
        assert_eq!(err("(1))").message, "unmatched `)`");
        assert!(err("foo(1)").message.contains("unknown function `foo`"));
        assert!(err("x + 1").message.contains("unknown name `x`"));
        assert!(
            err("sqrt(1, 2)")
                .message
                .contains("sqrt takes 1 argument, got 2")
        );
        assert!(err("1..2").message.contains("not a number"));
        assert!(err(&"(".repeat(500)).message.contains("nests deeper"));
    }

    #[test]
    fn formatting() {
        assert_eq!(format_number(42.0), "42");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_number(1e20), "1e20");
        assert_eq!(format_number(1.5e-7), "1.5e-7");
        assert_eq!(format_number(-2.5), "-2.5");
    }
}
