// A view's whole script is an immutable asset (ui/live.py): the browser fetches it once and
// keeps it, so a page view sends only these lines. MODULE_URL is put in by ui/live.py.
const loading = import(new URL("MODULE_URL", document.baseURI).href);

export default function (component) {
  let cleanup = null;
  let ended = false;
  loading.then((module) => {
    if (!ended) cleanup = module.default(component);
  }, (error) => {
    // As when the decoder fails: the page draws its images on the server instead.
    component.setStateValue("failed", `the view's script did not load (${error.message || error})`);
  });
  return () => {
    ended = true;
    if (typeof cleanup === "function") cleanup();
  };
}
