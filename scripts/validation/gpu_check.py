# The torch check script gpuprobe replaces (from the how-to our users start
# from), kept verbatim so scripts/gpu-validate can time it beside gpuprobe.
import torch

def check_gpu_availability():
    if torch.cuda.is_available():
        print(f"GPU is available: {torch.cuda.get_device_name(0)}")
        gpu_id = torch.cuda.current_device()
        print(f"Current GPU device is : {gpu_id}")
        total_memory = torch.cuda.get_device_properties(gpu_id).total_memory
        print(f"Total GPU memory: {total_memory / 1024**3:.2f} GB")
    else:
        print("GPU is not available. Falling back to CPU.")
        print(f"CUDA Version: {torch.version.cuda}")

if __name__ == "__main__":
    check_gpu_availability()
