//! timm's optimizer factory in Rust: [`OptimizerConfig::from_timm`] builds a
//! configuration from a timm optimizer name and the keyword arguments a timm script
//! passes to `timm.optim.create_optimizer_v2`, with the same defaults.
//!
//! The names and each class's own keywords live in the algorithm files
//! (`src/optim/algorithms/`); this module merges timm's factory defaults, accepts the
//! keywords that only steer PyTorch's execution, and rejects anything else by name.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::optim::algorithms::{Algorithm, TIMM_NAMES};
use crate::optim::config::{Caution, DecayMode, OptimizerConfig};

/// A default that a timm name puts under a keyword (timm's `OptimInfo.defaults`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum TimmDefault {
    /// A boolean keyword.
    Bool(bool),
    /// A number keyword.
    F64(f64),
}

/// One timm optimizer name and how coptim builds it.
#[derive(Debug)]
pub(crate) struct TimmName {
    /// The name `create_optimizer_v2` takes (`cadamw`).
    pub name: &'static str,
    /// The learning rate the optimizer class defaults to.
    pub lr: f64,
    /// timm's `OptimInfo.defaults` for the name.
    pub defaults: &'static [(&'static str, TimmDefault)],
    /// `OptimInfo.has_momentum`: the factory supplies `momentum = 0.9`.
    pub has_momentum: bool,
    /// `OptimInfo.has_eps`: otherwise the factory drops `eps`.
    pub has_eps: bool,
    /// `OptimInfo.has_betas`: otherwise the factory drops `betas`.
    pub has_betas: bool,
    /// Reads the class's own keywords (hyperparameters and `caution`).
    pub build: fn(&mut TimmArgs) -> Result<(Algorithm, Caution)>,
}

/// timm's `OptimInfo.defaults` entry of the cautious names (`cadamw`, `clion`, ...).
pub(crate) const CAUTION: (&str, TimmDefault) = ("caution", TimmDefault::Bool(true));
/// timm's `OptimInfo.defaults` entry of the decoupled-decay names (`lambw`,
/// `rmsproptfw`, ...).
pub(crate) const DECOUPLED_DECAY: (&str, TimmDefault) =
    ("decoupled_decay", TimmDefault::Bool(true));
/// timm's `OptimInfo.defaults` entry of the corrected-decay names (`adamc`, `lionc`, ...).
pub(crate) const CORRECTED: (&str, TimmDefault) =
    ("corrected_weight_decay", TimmDefault::Bool(true));

impl TimmName {
    /// The name `name` of a class whose keywords `build` reads and whose learning rate
    /// defaults to `lr`; no factory defaults, and the factory drops momentum, eps and
    /// betas until [`TimmName::momentum`], [`TimmName::eps`], [`TimmName::betas`] say.
    pub const fn new(
        name: &'static str,
        lr: f64,
        build: fn(&mut TimmArgs) -> Result<(Algorithm, Caution)>,
    ) -> Self {
        Self {
            name,
            lr,
            defaults: &[],
            has_momentum: false,
            has_eps: false,
            has_betas: false,
            build,
        }
    }

    /// The same class under another name, with that name's `OptimInfo.defaults`.
    pub const fn alias(
        self,
        name: &'static str,
        defaults: &'static [(&'static str, TimmDefault)],
    ) -> Self {
        Self {
            name,
            defaults,
            ..self
        }
    }

    /// `OptimInfo.has_momentum`.
    pub const fn momentum(self) -> Self {
        Self {
            has_momentum: true,
            ..self
        }
    }

    /// `OptimInfo.has_eps`.
    pub const fn eps(self) -> Self {
        Self {
            has_eps: true,
            ..self
        }
    }

    /// `OptimInfo.has_betas`.
    pub const fn betas(self) -> Self {
        Self {
            has_betas: true,
            ..self
        }
    }
}

/// Keywords that only steer PyTorch's execution or bookkeeping: accepted, ignored.
const EXECUTION_ONLY: &[&str] = &[
    "foreach",
    "fused",
    "capturable",
    "differentiable",
    "max_lr_snapshot",
    "step",
];

/// timm's keyword arguments, consumed one by one; what is left at the end is an error.
#[derive(Debug)]
pub(crate) struct TimmArgs {
    name: &'static str,
    args: Map<String, Value>,
    /// The decay mode the class's keywords ask for (`corrected_weight_decay`).
    decay: DecayMode,
}

impl TimmArgs {
    /// The keywords `given` to timm's `name`, with the execution-only ones removed
    /// and `defaults` filled in where absent (for the optimizers outside the
    /// element-wise registry: [`crate::optim::EngineConfig::from_timm`]).
    pub(crate) fn for_name(
        name: &'static str,
        given: &Value,
        defaults: &[(&str, Value)],
    ) -> Result<Self> {
        let given = given.as_object().ok_or_else(|| {
            Error::InvalidConfig(format!("timm `{name}`: kwargs {given} are not an object"))
        })?;
        let mut args = given.clone();
        for key in EXECUTION_ONLY {
            args.remove(*key);
        }
        for (key, value) in defaults {
            args.entry(*key).or_insert(value.clone());
        }
        let mut args = Self {
            name,
            args,
            decay: DecayMode::default(),
        };
        args.only("maximize", Value::Bool(false))?;
        Ok(args)
    }

    /// Fails naming the first keyword nobody consumed (see [`TimmArgs::for_name`]).
    pub(crate) fn done(self) -> Result<()> {
        self.finish()
    }

    /// A keyword accepted and ignored.
    pub(crate) fn ignore(&mut self, key: &str) {
        self.take(key);
    }

    /// Removes `key`, or `None` when absent.
    fn take(&mut self, key: &str) -> Option<Value> {
        self.args.remove(key)
    }

    fn bad(&self, key: &str, value: &Value, want: &str) -> Error {
        Error::InvalidConfig(format!(
            "timm `{}`: keyword `{key}` = {value} is not {want}",
            self.name
        ))
    }

    /// A number, `default` when absent.
    pub fn f64(&mut self, key: &str, default: f64) -> Result<f64> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| self.bad(key, &v, "a number")),
        }
    }

    /// A boolean, `default` when absent.
    pub fn bool(&mut self, key: &str, default: bool) -> Result<bool> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.bad(key, &v, "a boolean")),
        }
    }

    /// A number or `null` (`None`), `default` when absent.
    pub fn optional_f64(&mut self, key: &str, default: Option<f64>) -> Result<Option<f64>> {
        match self.take(key) {
            None => Ok(default),
            Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.bad(key, &v, "a number or null")),
        }
    }

    /// timm's `corrected_weight_decay` keyword (decay scaled by `lr^2 / max_lr`),
    /// for the classes that take it.
    pub fn corrected_decay(&mut self) -> Result<()> {
        self.decay.corrected = self.bool("corrected_weight_decay", false)?;
        Ok(())
    }

    /// A string, `default` when absent.
    pub fn string(&mut self, key: &str, default: &str) -> Result<String> {
        match self.take(key) {
            None => Ok(default.to_string()),
            Some(v) => v
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| self.bad(key, &v, "a string")),
        }
    }

    /// A string or `null` (`None`); absent keys must have a default filled in.
    pub fn optional_string(&mut self, key: &str) -> Result<Option<String>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.bad(key, &v, "a string or null")),
        }
    }

    /// A list of numbers or `null` (`None`), `None` when absent.
    pub fn optional_f64_list(&mut self, key: &str) -> Result<Option<Vec<f64>>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                self.args.insert(key.to_string(), v);
                self.f64_list(key, &[]).map(Some)
            }
        }
    }

    /// A list of numbers, `default` when absent.
    pub fn f64_list(&mut self, key: &str, default: &[f64]) -> Result<Vec<f64>> {
        match self.take(key) {
            None => Ok(default.to_vec()),
            Some(v) => v
                .as_array()
                .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<_>>>())
                .ok_or_else(|| self.bad(key, &v, "a list of numbers")),
        }
    }

    /// A keyword coptim supports only at its default value `supported`.
    pub fn only(&mut self, key: &str, supported: Value) -> Result<()> {
        match self.take(key) {
            Some(v) if !same_value(&v, &supported) => Err(self.bad(
                key,
                &v,
                &format!("supported by coptim (only {supported} is)"),
            )),
            _ => Ok(()),
        }
    }

    /// timm's `caution` keyword as coptim's caution (timm masks with `mean_clamp`).
    pub fn caution(&mut self) -> Result<Caution> {
        Ok(if self.bool("caution", false)? {
            Caution::hard()
        } else {
            Caution::Off
        })
    }

    /// Fails naming the first keyword nobody consumed.
    fn finish(self) -> Result<()> {
        match self.args.keys().next() {
            None => Ok(()),
            Some(key) => Err(Error::InvalidConfig(format!(
                "timm `{}`: unknown keyword `{key}`",
                self.name
            ))),
        }
    }
}

/// Every timm name coptim builds, in registry order.
pub fn timm_names() -> impl Iterator<Item = &'static str> {
    TIMM_NAMES.iter().flat_map(|t| t.iter().map(|n| n.name))
}

impl OptimizerConfig {
    /// The configuration `timm.optim.create_optimizer_v2(params, name, **kwargs)` builds
    /// for a plain list of tensors: timm's optimizer `name` (`adamw`, `cadamw`, `clion`,
    /// `csgdw`, ...; case-insensitive) and its keyword arguments as a JSON object, with
    /// timm's defaults for those not given. Keywords that only steer PyTorch's execution
    /// (`foreach`, `fused`, `capturable`, `differentiable`, `max_lr_snapshot`, `step`,
    /// `maximize` when false) are ignored; an unknown name, an unknown keyword or a value
    /// coptim does not support is an [`Error::InvalidConfig`] naming it.
    ///
    /// ```
    /// use coptim::optim::OptimizerConfig;
    /// let cfg = OptimizerConfig::from_timm("cadamw", &serde_json::json!({"lr": 1e-3}))?;
    /// assert_eq!(cfg.algorithm.name(), "adamw");
    /// assert!(cfg.caution.is_on());
    /// # Ok::<(), coptim::Error>(())
    /// ```
    pub fn from_timm(name: &str, kwargs: &Value) -> Result<OptimizerConfig> {
        let lower = name.to_ascii_lowercase();
        let entry = TIMM_NAMES
            .iter()
            .flat_map(|t| t.iter())
            .find(|n| n.name == lower)
            .ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "unknown timm optimizer `{name}`; coptim builds: {}",
                    timm_names().collect::<Vec<_>>().join(", ")
                ))
            })?;
        let given = kwargs.as_object().ok_or_else(|| {
            Error::InvalidConfig(format!("timm `{name}`: kwargs {kwargs} are not an object"))
        })?;
        let mut args = TimmArgs {
            name: entry.name,
            args: factory_args(entry, given),
            decay: DecayMode::default(),
        };
        for key in EXECUTION_ONLY {
            args.take(key);
        }
        args.only("maximize", Value::Bool(false))?;
        let lr = match args.take("lr") {
            None | Some(Value::Null) => entry.lr,
            Some(v) => v.as_f64().ok_or_else(|| args.bad("lr", &v, "a number"))?,
        };
        let weight_decay = args.f64("weight_decay", 0.0)?;
        let (algorithm, caution) = (entry.build)(&mut args)?;
        let decay = args.decay;
        args.finish()?;
        let config = OptimizerConfig::new(algorithm, lr)
            .with_caution(caution)
            .with_weight_decay(weight_decay)
            .with_decay(decay);
        config.validate()?;
        Ok(config)
    }

    /// The hyperparameters under timm's keyword names, as a timm parameter group holds
    /// them (`lr`, `weight_decay`, `caution`, and the algorithm's own: `betas`, `eps`,
    /// `momentum`, ...). `caution` says whether a mask is on at all; timm's is always
    /// `mean_clamp`.
    pub fn timm_group(&self) -> Map<String, Value> {
        let mut group = match self.algorithm.rules().timm_group() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        group.insert("lr".into(), Value::from(self.lr));
        group.insert("weight_decay".into(), Value::from(self.weight_decay));
        group.insert("caution".into(), Value::Bool(self.caution.is_on()));
        group.insert(
            "corrected_weight_decay".into(),
            Value::Bool(self.decay.corrected),
        );
        group
    }
}

/// The keywords `create_optimizer_v2` passes to the class: the given ones, then the
/// name's defaults and timm's momentum 0.9 where absent, less `eps` and `betas` where
/// the class takes none.
fn factory_args(entry: &TimmName, given: &Map<String, Value>) -> Map<String, Value> {
    let mut args = given.clone();
    for &(key, default) in entry.defaults {
        let value = match default {
            TimmDefault::Bool(b) => Value::Bool(b),
            TimmDefault::F64(x) => Value::from(x),
        };
        args.entry(key).or_insert(value);
    }
    if entry.has_momentum {
        args.entry("momentum").or_insert(Value::from(0.9));
    }
    if !entry.has_eps {
        args.remove("eps");
    }
    if !entry.has_betas {
        args.remove("betas");
    }
    args
}

/// JSON equality with numbers compared by value (`0` equals `0.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}
