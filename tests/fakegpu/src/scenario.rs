//! Scenario files: what the fake driver pretends the machine is.
//!
//! One JSON file (tests/scenarios/NAME.json) configures the fake libcuda and
//! the fake NVML alike. Unknown fields are rejected so a typo in a scenario
//! fails loudly instead of silently testing the healthy path.
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario stands for; documentation only.
    #[serde(default)]
    pub description: String,
    /// What cuDriverGetVersion reports (1000 * major + 10 * minor).
    #[serde(default = "default_driver_version")]
    pub driver_version: i32,
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Calls that fail, or never return.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Driver API symbols the library does not export, as on an old driver.
    #[serde(default)]
    pub missing_symbols: Vec<String>,
}

fn default_driver_version() -> i32 {
    12040
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub name: String,
    /// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as nvidia-smi prints it.
    pub uuid: String,
    /// "0000:01:00.0".
    pub pci_bus_id: String,
    /// [major, minor].
    pub compute_capability: [i32; 2],
    pub multiprocessors: i32,
    pub clock_mhz: i32,
    pub memory_bytes: u64,
    /// Memory already taken by other processes when the probe starts.
    #[serde(default)]
    pub memory_used_bytes: u64,
    #[serde(default = "default_memory_clock_mhz")]
    pub memory_clock_mhz: i32,
    #[serde(default = "default_bus_width")]
    pub memory_bus_width_bits: i32,
    /// Elements of every device-to-host copy that come back wrong (a bit
    /// flipped in the exponent), as on a GPU with bad memory.
    #[serde(default)]
    pub corrupt_results: u32,
}

fn default_memory_clock_mhz() -> i32 {
    2619
}

fn default_bus_width() -> i32 {
    5120
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Exported symbol name, e.g. "cuInit" or "cuMemAlloc_v2".
    pub call: String,
    /// Only calls on this device (CUDA ordinal); all devices when absent.
    #[serde(default)]
    pub device: Option<usize>,
    /// The CUresult the call returns.
    #[serde(default)]
    pub result: Option<i32>,
    /// The call never returns.
    #[serde(default)]
    pub hang: bool,
    /// Calls that succeed before the fault starts.
    #[serde(default)]
    pub after: u32,
}

impl Scenario {
    pub fn load(path: &str) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let scenario: Scenario = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        scenario.validate().map_err(|e| format!("{path}: {e}"))?;
        Ok(scenario)
    }

    fn validate(&self) -> Result<(), String> {
        for d in &self.devices {
            parse_uuid(&d.uuid).ok_or_else(|| format!("bad uuid {:?}", d.uuid))?;
        }
        for f in &self.faults {
            if f.result.is_none() && !f.hang {
                return Err(format!("fault on {} has neither result nor hang", f.call));
            }
            if let Some(dev) = f.device {
                if dev >= self.devices.len() {
                    return Err(format!("fault on {} names device {dev}", f.call));
                }
            }
        }
        Ok(())
    }
}

/// "GPU-" followed by 32 hex digits in 8-4-4-4-12 groups, to 16 bytes.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: String = text
        .strip_prefix("GPU-")?
        .chars()
        .filter(|c| *c != '-')
        .collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
