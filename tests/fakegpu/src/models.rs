//! What NVML reports of a GPU model by default: its maximum SM and memory
//! clocks, memory bus width, board power limit, PCIe link and whether it
//! has ECC, so that a scenario naming a V100 gets a V100's readings and not
//! an H100's. A value the scenario states wins (`Scenario::load` resolves
//! these after reading the file); a model not in the table keeps
//! `DeviceNvml::default()`, an H100 SXM5's readings.
//!
//! Sources, per row: NVIDIA's product datasheets (boost clock, memory
//! bandwidth and interface width, maximum power, PCIe generation). NVML's
//! memory clock is the one `nvidia-smi -q -d CLOCK` prints as "Max Clocks,
//! Memory" and CUDA as CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: HBM's clock
//! (bandwidth = 2 × clock × bus width / 8), GDDR6's at half the per-pin data
//! rate (a 10 Gbps part reads 5001 MHz). Where a datasheet gives only the
//! bandwidth, the clock is the bandwidth over the bus width, rounded as the
//! driver reports it; the rows marked "unconfirmed" are checked on the next
//! real GPU (docs/gpu-validation.md, "Item 9").
//!
//! Which getters a model answers, checked against reports of real boards:
//! ECC only where the board has ECC memory (`Model::ecc`);
//! nvmlDeviceGetPowerManagementDefaultLimit on every desktop board here
//! (a 450 W GeForce's `nvidia-smi -q` shows its default_power_limit:
//! 1Panel-dev/1Panel#11910; laptop GPUs answer NOT_SUPPORTED,
//! Dreaming-Codes/nvidia_oc#22, and none is in the table); and
//! nvmlDeviceGetRemappedRows by architecture alone (nvml.rs), since a
//! GeForce RTX 4090, which remaps no rows, still answers it rather than
//! NOT_SUPPORTED (leptonai/gpud#351).

/// One GPU model's defaults.
#[derive(Debug, Clone, Copy)]
pub struct Model {
    /// The names NVML and cuDeviceGetName give this model, exactly.
    pub names: &'static [&'static str],
    /// nvmlDeviceGetMaxClockInfo(SM): the boost clock, MHz.
    pub sm_clock_max_mhz: u32,
    /// nvmlDeviceGetMaxClockInfo(MEM), MHz (see the module doc).
    pub memory_clock_mhz: u32,
    /// nvmlDeviceGetMemoryBusWidth, bits.
    pub memory_bus_width_bits: u32,
    /// The board's default power limit, W (the datasheet's maximum power).
    pub power_limit_watts: f64,
    /// The PCIe generation and width of the board's link.
    pub pcie_generation: u32,
    pub pcie_width: u32,
    /// Whether the board has ECC memory; without it nvmlDeviceGetEccMode
    /// answers NVML_ERROR_NOT_SUPPORTED.
    pub ecc: bool,
    /// The NVLinks of the board the part comes on (crate::nvlink); `None`
    /// for a PCIe card, whose links come only with a bridge the scenario
    /// states.
    pub nvlink: Option<ModelNvLink>,
}

/// A model's NVLinks: all active, to the HGX board's NVSwitches.
#[derive(Debug, Clone, Copy)]
pub struct ModelNvLink {
    pub links: u32,
    pub version: u32,
    pub speed_mbps: u32,
}

impl ModelNvLink {
    /// The scenario's form of these links.
    #[must_use]
    pub fn links(self) -> crate::nvlink::NvLinks {
        crate::nvlink::NvLinks {
            links: self.links,
            version: self.version,
            remote: crate::nvlink::Remote::Nvswitch,
            remote_pci_bus_ids: Vec::new(),
            speed_mbps: self.speed_mbps,
            inactive: Vec::new(),
            errors: Vec::new(),
        }
    }
}

/// An H100 or H200 SXM on an HGX board: 18 NVLink 4 links to four
/// NVSwitches (crate::nvlink).
const HGX_H100: Option<ModelNvLink> = Some(ModelNvLink {
    links: 18,
    version: 4,
    speed_mbps: 26562,
});

/// An A100 SXM on an HGX board: 12 NVLink 3 links to six NVSwitches.
const HGX_A100: Option<ModelNvLink> = Some(ModelNvLink {
    links: 12,
    version: 3,
    speed_mbps: 25000,
});

/// The models the scenarios name, and the common datacenter GPUs.
pub const MODELS: &[Model] = &[
    // Tesla V100 datasheet (2020): SXM2 1530 MHz boost, 300 W; PCIe 1380
    // MHz, 250 W; 4096-bit HBM2 at 900 GB/s (877 MHz); PCIe Gen3 x16.
    Model {
        names: &["Tesla V100-SXM2-16GB", "Tesla V100-SXM2-32GB"],
        sm_clock_max_mhz: 1530,
        memory_clock_mhz: 877,
        memory_bus_width_bits: 4096,
        power_limit_watts: 300.0,
        pcie_generation: 3,
        pcie_width: 16,
        ecc: true,
        nvlink: None,
    },
    Model {
        names: &["Tesla V100-PCIE-16GB", "Tesla V100-PCIE-32GB"],
        sm_clock_max_mhz: 1380,
        memory_clock_mhz: 877,
        memory_bus_width_bits: 4096,
        power_limit_watts: 250.0,
        pcie_generation: 3,
        pcie_width: 16,
        ecc: true,
        nvlink: None,
    },
    // Tesla T4 datasheet: 1590 MHz boost, 70 W, 256-bit GDDR6 at 320 GB/s
    // (10 Gbps: 5001 MHz), PCIe Gen3 x16, ECC.
    Model {
        names: &["Tesla T4"],
        sm_clock_max_mhz: 1590,
        memory_clock_mhz: 5001,
        memory_bus_width_bits: 256,
        power_limit_watts: 70.0,
        pcie_generation: 3,
        pcie_width: 16,
        ecc: true,
        nvlink: None,
    },
    // NVIDIA A10 datasheet: 1695 MHz boost, 150 W, 384-bit GDDR6 at 600
    // GB/s (12.5 Gbps: 6251 MHz), PCIe Gen4 x16, ECC.
    Model {
        names: &["NVIDIA A10"],
        sm_clock_max_mhz: 1695,
        memory_clock_mhz: 6251,
        memory_bus_width_bits: 384,
        power_limit_watts: 150.0,
        pcie_generation: 4,
        pcie_width: 16,
        ecc: true,
        nvlink: None,
    },
    // NVIDIA A100 datasheet: 1410 MHz boost, 5120-bit HBM2(e); SXM4 400 W,
    // 40GB at 1555 GB/s (1215 MHz), 80GB at 2039 GB/s (1593 MHz); PCIe
    // 40GB 250 W, 80GB 300 W at 1935 GB/s (1512 MHz); PCIe Gen4 x16.
    Model {
        names: &["NVIDIA A100-SXM4-40GB"],
        sm_clock_max_mhz: 1410,
        memory_clock_mhz: 1215,
        memory_bus_width_bits: 5120,
        power_limit_watts: 400.0,
        pcie_generation: 4,
        pcie_width: 16,
        ecc: true,
        nvlink: HGX_A100,
    },
    Model {
        names: &["NVIDIA A100-SXM4-80GB"],
        sm_clock_max_mhz: 1410,
        memory_clock_mhz: 1593,
        memory_bus_width_bits: 5120,
        power_limit_watts: 400.0,
        pcie_generation: 4,
        pcie_width: 16,
        ecc: true,
        nvlink: HGX_A100,
    },
    Model {
        names: &["NVIDIA A100-PCIE-40GB"],
        sm_clock_max_mhz: 1410,
        memory_clock_mhz: 1215,
        memory_bus_width_bits: 5120,
        power_limit_watts: 250.0,
        pcie_generation: 4,
        pcie_width: 16,
        ecc: true,
        nvlink: None,
    },
    Model {
        names: &["NVIDIA A100 80GB PCIe"],
        sm_clock_max_mhz: 1410,
        memory_clock_mhz: 1512,
        memory_bus_width_bits: 5120,
        power_limit_watts: 300.0,
        pcie_generation: 4,
        pcie_width: 16,
        ecc: true,
        nvlink: None,
    },
    // NVIDIA L4 datasheet: 2040 MHz boost, 72 W, 192-bit GDDR6 at 300 GB/s
    // (6251 MHz), PCIe Gen4 x16, ECC.
    Model {
        names: &["NVIDIA L4"],
        sm_clock_max_mhz: 2040,
        memory_clock_mhz: 6251,
        memory_bus_width_bits: 192,
        power_limit_watts: 72.0,
        pcie_generation: 4,
        pcie_width: 16,
        ecc: true,
        nvlink: None,
    },
    // NVIDIA L40S datasheet: 2520 MHz boost, 350 W, 384-bit GDDR6 at 864
    // GB/s (18 Gbps: 9001 MHz), PCIe Gen4 x16, ECC.
    Model {
        names: &["NVIDIA L40S"],
        sm_clock_max_mhz: 2520,
        memory_clock_mhz: 9001,
        memory_bus_width_bits: 384,
        power_limit_watts: 350.0,
        pcie_generation: 4,
        pcie_width: 16,
        ecc: true,
        nvlink: None,
    },
    // NVIDIA H100 datasheet: SXM5 1980 MHz boost, 700 W, 5120-bit HBM3 at
    // 3.35 TB/s (2619 MHz, as an H100 80GB HBM3 reports it); PCIe 1755 MHz,
    // 350 W, HBM2e at 2 TB/s (1593 MHz); PCIe Gen5 x16.
    Model {
        names: &["NVIDIA H100 80GB HBM3"],
        sm_clock_max_mhz: 1980,
        memory_clock_mhz: 2619,
        memory_bus_width_bits: 5120,
        power_limit_watts: 700.0,
        pcie_generation: 5,
        pcie_width: 16,
        ecc: true,
        nvlink: HGX_H100,
    },
    Model {
        names: &["NVIDIA H100 PCIe"],
        sm_clock_max_mhz: 1755,
        memory_clock_mhz: 1593,
        memory_bus_width_bits: 5120,
        power_limit_watts: 350.0,
        pcie_generation: 5,
        pcie_width: 16,
        ecc: true,
        nvlink: None,
    },
    // NVIDIA H200 datasheet: 700 W (SXM), 141 GB HBM3e at 4.8 TB/s on a
    // 6144-bit bus (3201 MHz; unconfirmed), the H100's 1980 MHz boost
    // (one H200 read 1980 MHz under load: ../shared/FACTS.md section 12),
    // PCIe Gen5 x16.
    Model {
        names: &["NVIDIA H200"],
        sm_clock_max_mhz: 1980,
        memory_clock_mhz: 3201,
        memory_bus_width_bits: 6144,
        power_limit_watts: 700.0,
        pcie_generation: 5,
        pcie_width: 16,
        ecc: true,
        nvlink: HGX_H100,
    },
    // NVIDIA T400 datasheet: 1425 MHz boost, 30 W, 64-bit GDDR6 at 80 GB/s
    // (5001 MHz), PCIe Gen3 x16; no ECC (none listed; nvidia-smi prints
    // N/A for its ECC mode).
    Model {
        names: &["NVIDIA T400 4GB", "NVIDIA T400"],
        sm_clock_max_mhz: 1425,
        memory_clock_mhz: 5001,
        memory_bus_width_bits: 64,
        power_limit_watts: 30.0,
        pcie_generation: 3,
        pcie_width: 16,
        ecc: false,
        nvlink: None,
    },
    // NVIDIA RTX A2000 datasheet: 1200 MHz boost, 70 W, 192-bit GDDR6 at
    // 288 GB/s (12 Gbps: 6001 MHz), PCIe Gen4 x16, ECC.
    Model {
        names: &["NVIDIA RTX A2000"],
        sm_clock_max_mhz: 1200,
        memory_clock_mhz: 6001,
        memory_bus_width_bits: 192,
        power_limit_watts: 70.0,
        pcie_generation: 4,
        pcie_width: 16,
        ecc: true,
        nvlink: None,
    },
    // GeForce RTX 4090 specifications: 2520 MHz boost, 450 W, 384-bit
    // GDDR6X at 21 Gbps (10501 MHz), PCIe Gen4 x16.
    Model {
        names: &["NVIDIA GeForce RTX 4090"],
        sm_clock_max_mhz: 2520,
        memory_clock_mhz: 10501,
        memory_bus_width_bits: 384,
        power_limit_watts: 450.0,
        pcie_generation: 4,
        pcie_width: 16,
        ecc: true,
        nvlink: None,
    },
];

/// The model of a GPU named `name` (cuDeviceGetName's and NVML's name), or
/// `None` for one not in the table.
#[must_use]
pub fn model(name: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.names.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut all: Vec<&str> = MODELS
            .iter()
            .flat_map(|m| m.names.iter().copied())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn a_v100_sxm2_peaks_at_its_datasheet_figures() {
        // 80 SMs × 64 FP32 lanes × 2 × 1530 MHz = 15.7 TFLOP/s; 2 × 877 MHz
        // × 4096 bits / 8 = 898 GB/s (the datasheet's 900 GB/s).
        let m = model("Tesla V100-SXM2-32GB").unwrap();
        let tflops = 80.0 * 64.0 * 2.0 * f64::from(m.sm_clock_max_mhz) / 1e6;
        assert!((tflops - 15.67).abs() < 0.01, "{tflops}");
        let gbps = 2.0 * f64::from(m.memory_clock_mhz) * f64::from(m.memory_bus_width_bits) / 8e3;
        assert!((gbps - 898.0).abs() < 1.0, "{gbps}");
        assert!(model("Tesla V100-SXM2-40GB").is_none());
    }
}
