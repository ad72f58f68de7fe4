// Builds the chat page that `rx-allm serve` ships: web/src → rx_allm/ui/static (committed,
// so the page runs after `pip install` with no Node). CI rebuilds it and checks it matches.
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  base: "./",
  build: {
    outDir: process.env.RX_ALLM_STATIC_OUT || "../rx_allm/ui/static",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1024,
  },
});
