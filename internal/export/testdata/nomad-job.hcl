# ginit on Nomad's qemu task driver. The workload's exit status N comes
# back as the task's exit code 2N+1 (QEMU's isa-debug-exit): 1 is success.
job "hello" {
  datacenters = ["*"]
  type        = "batch"

  group "hello" {
    network {
      port "http" {}
    }

    task "hello" {
      driver       = "qemu"
      kill_timeout = "30s"

      artifact {
        source      = "https://artifacts.example/hello/vmlinuz"
        destination = "local/"
        mode        = "file"
      }

      artifact {
        source      = "https://artifacts.example/hello/initramfs"
        destination = "local/"
        mode        = "file"
      }

      artifact {
        source      = "https://artifacts.example/hello/disk.img"
        destination = "local/"
        mode        = "file"
      }

      config {
        image_path        = "local/disk.img"
        drive_interface   = "virtio"
        accelerator       = "kvm"
        graceful_shutdown = true
        args = [
          "-kernel",
          "local/vmlinuz",
          "-initrd",
          "local/initramfs",
          "-append",
          "console=ttyS0 panic=-1 ginit.onerror=poweroff entrypoint=\"/app/server --greeting $${NAME}\"",
          "-device",
          "isa-debug-exit,iobase=0xf4,iosize=0x04",
          "-no-reboot",
        ]
        port_map {
          http = 8080
        }
      }

      resources {
        memory = 256
      }
    }
  }
}
